"""The local single-node Kafka broker used by `ssegate demo` and by the test suite.

`ssegate devkafka start | stop | status` on the command line; `DevKafka` from Python.
"""

from ssegate.devkafka.broker import BrokerInfo, DevKafka, default_home
from ssegate.devkafka.jars import default_cache_root, kafka_version
from ssegate.devkafka.java import MINIMUM_JAVA, find_java

__all__ = [
    "MINIMUM_JAVA",
    "BrokerInfo",
    "DevKafka",
    "default_cache_root",
    "default_home",
    "find_java",
    "kafka_version",
]
