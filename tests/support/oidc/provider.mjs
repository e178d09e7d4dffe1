// A real OpenID provider for ssegate's tests: panva's oidc-provider (the version pinned in
// package.json), started by tests/support/oidc_provider.py as
//
//   node provider.mjs <install directory> <config.json>
//
// config.json: {"audience": "<resource indicator>", "scopes": ["quotes:read", ...],
//               "ttl": <token lifetime, s>, "clients": [{"client_id", "client_secret",
//               "scope": "<the scopes it may ask for>"}], "ready_file": "<path>"}
//
// It listens on a free port of 127.0.0.1 (chosen by the kernel: no race for it), its issuer
// is http://127.0.0.1:<port> (oidc-provider allows plain HTTP outside production), and it
// writes that issuer to ready_file once it answers. Tokens: OAuth 2.0 client credentials
// (the client authenticated with HTTP Basic: client_secret_basic) with a `resource`
// (RFC 8707) naming the audience; each is an RS256 JWT (`typ: at+jwt`, RFC 9068) with iss, aud (the resource),
// sub, client_id, scope, jti, iat, exp. For client credentials oidc-provider sets `sub` to
// the client_id itself (lib/models/formats/jwt.js: `sub: sub || clientId`), so a guard's
// `identity: sub` is the client; no extraTokenClaims hook is needed.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [installDir, configFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, 'utf8'));
// This file lives in the source tree; oidc-provider in the install directory (the cache).
const entry = createRequire(join(installDir, 'package.json')).resolve('oidc-provider');
const { default: Provider, errors } = await import(pathToFileURL(entry).href);

// A fresh signing key each start: tokens of an earlier run never verify.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'oidc-rsa-1', use: 'sig', alg: 'RS256' };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      scope: client.scope, // what it may ask for
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    // The scopes a client's `scope` restricts: the resource server's.
    scopes: ['openid', ...config.scopes],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] }, // unused: no login pages
    ttl: { ClientCredentials: config.ttl },
    features: {
      devInteractions: { enabled: false }, // no login pages: machine clients only
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Without `resource=` a token is opaque (not a JWT, no aud): a gateway refuses it.
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator !== config.audience) {
            throw new errors.InvalidTarget();
          }
          return {
            audience: config.audience,
            scope: config.scopes.join(' '),
            accessTokenTTL: config.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  server.on('request', provider.callback());
  const temporary = `${config.ready_file}.tmp`;
  writeFileSync(temporary, `${issuer}\n`);
  renameSync(temporary, config.ready_file);
  console.log(`oidc-provider listening, issuer ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections(); // a gateway's keys client keeps its connection open
    server.close(() => process.exit(0));
  });
}
