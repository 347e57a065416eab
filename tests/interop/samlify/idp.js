#!/usr/bin/env node
// An external "corporate" SAML IdP built on samlify (signatures by xml-crypto, not pysaml2 nor
// xmlsec1), for emustudio's interop tests. It addresses its responses to AWS exactly as a real
// IdP configured for AWS sign-in does (Destination and Recipient https://signin.aws.amazon.com/saml,
// Audience urn:amazon:webservices, the AWS Role/RoleSessionName/SessionDuration attributes) and
// auto-posts them to the gateway standing in for signin.aws.amazon.com.
//
//   node idp.js --port 0 --gateway http://localhost:8080 --key idp.key --cert idp.crt \
//       --role arn:aws:iam::000000000000:role/R,arn:aws:iam::000000000000:saml-provider/P \
//       [--role ...] [--user alice@example.com] [--duration 3600]
//
// It prints one line, {"port": N, "entityID": "..."}, once it listens.
//
//   GET /metadata                   its IdP metadata (for iam:CreateSAMLProvider)
//   GET /sso?RelayState=<url>       SP-initiated (a Studio's IdpAuthUrl): auto-post to <gateway>/saml
//   GET /initiate?relay=<url>       IdP-initiated (an IdP portal's tile): the same, RelayState=<url>
//
// /sso and /initiate also take user=<RoleSessionName> (who signed in; there is no login page),
// role=<role ARN>,<provider ARN> (repeatable; instead of the --role ones) and
// sign=both|assertion|response (which elements samlify signs; both by default, as AWS's metadata
// asks for signed assertions and many IdPs sign the response too).
//
// scripts/setup installs the packages with `npm ci`. To change them, run
// `npm install --omit-lockfile-registry-resolved ...` here: the lock keeps versions and integrity
// hashes but no registry URLs, so npm ci fetches from whichever registry npm is configured with.
'use strict';

const fs = require('fs');
const http = require('http');
const samlify = require('samlify');
const validator = require('@authenio/samlify-node-xmllint');

samlify.setSchemaValidator(validator);

const ATTR = 'https://aws.amazon.com/SAML/Attributes/';
const AWS_ACS = 'https://signin.aws.amazon.com/saml';
const AWS_AUDIENCE = 'urn:amazon:webservices';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const URI_FORMAT = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';

function options(argv) {
  const opts = { port: '0', role: [], user: 'alice@example.com' };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (name === 'role') opts.role.push(value);
    else opts[name] = value;
  }
  for (const required of ['gateway', 'key', 'cert']) {
    if (!opts[required]) throw new Error(`--${required} is required`);
  }
  return opts;
}

// AWS's own SP metadata says WantAssertionsSigned="true"; the variant without it lets samlify
// sign only the Response (AWS accepts either signature).
function awsServiceProvider(wantAssertionsSigned, wantMessageSigned) {
  const metadata =
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"' +
    ` entityID="${AWS_AUDIENCE}">` +
    `<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="${wantAssertionsSigned}"` +
    ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">' +
    `<md:NameIDFormat>${PERSISTENT}</md:NameIDFormat>` +
    `<md:AssertionConsumerService index="1" isDefault="true" Binding="${POST}" Location="${AWS_ACS}"/>` +
    '</md:SPSSODescriptor></md:EntityDescriptor>';
  return samlify.ServiceProvider({ metadata, wantMessageSigned });
}

const SERVICE_PROVIDERS = {
  both: awsServiceProvider(true, true),
  assertion: awsServiceProvider(true, false),
  response: awsServiceProvider(false, true),
};

// samlify's default template writes InResponseTo="" (not an xs:NCName: schema-invalid) and has no
// AuthnStatement (which SAML's Web Browser SSO profile requires); this one is the default without
// InResponseTo (these responses are unsolicited: AWS sends no AuthnRequest) plus an
// AuthnStatement and the AWS attributes.
function responseTemplate(attributes) {
  const attributeXml = attributes
    .map(
      ([name, values], i) =>
        `<saml:Attribute Name="${name}" NameFormat="${URI_FORMAT}">` +
        values
          .map((_, j) => `<saml:AttributeValue xsi:type="xs:string">{attr${i}x${j}}</saml:AttributeValue>`)
          .join('') +
        '</saml:Attribute>'
    )
    .join('');
  return (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"' +
    ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0"' +
    ' IssueInstant="{IssueInstant}" Destination="{Destination}">' +
    '<saml:Issuer>{Issuer}</saml:Issuer>' +
    '<samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status>' +
    '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{AssertionID}" Version="2.0"' +
    ' IssueInstant="{IssueInstant}">' +
    '<saml:Issuer>{Issuer}</saml:Issuer>' +
    '<saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID>' +
    '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">' +
    '<saml:SubjectConfirmationData NotOnOrAfter="{SubjectConfirmationDataNotOnOrAfter}"' +
    ' Recipient="{SubjectRecipient}"/></saml:SubjectConfirmation></saml:Subject>' +
    '<saml:Conditions NotBefore="{ConditionsNotBefore}" NotOnOrAfter="{ConditionsNotOnOrAfter}">' +
    '<saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction>' +
    '</saml:Conditions>' +
    '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{AssertionID}">' +
    '<saml:AuthnContext><saml:AuthnContextClassRef>' +
    'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport' +
    '</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>' +
    `<saml:AttributeStatement>${attributeXml}</saml:AttributeStatement>` +
    '</saml:Assertion></samlp:Response>'
  );
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function main() {
  const opts = options(process.argv.slice(2));
  const privateKey = fs.readFileSync(opts.key, 'utf8');
  const signingCert = fs.readFileSync(opts.cert, 'utf8');
  const acs = opts.gateway.replace(/\/+$/, '') + '/saml';
  let idp = null;

  async function samlResponse(user, roles, sign) {
    const sp = SERVICE_PROVIDERS[sign];
    if (!sp) throw new Error(`sign must be one of ${Object.keys(SERVICE_PROVIDERS).join(', ')}`);
    const attributes = [
      [ATTR + 'Role', roles],
      [ATTR + 'RoleSessionName', [user]],
    ];
    if (opts.duration) attributes.push([ATTR + 'SessionDuration', [opts.duration]]);
    const template = responseTemplate(attributes);
    const { id, context } = await idp.createLoginResponse(
      sp,
      { extract: { request: { id: '' } } },
      'post',
      { email: user },
      () => {
        // samlify fills the default tags (IDs, instants, Destination and Recipient from the SP's
        // ACS, Audience from its entity ID); this callback is where a custom template gets them.
        const now = new Date();
        const later = new Date(now.getTime() + 5 * 60 * 1000).toISOString();
        const responseId = idp.entitySetting.generateID();
        const values = {
          ID: responseId,
          AssertionID: idp.entitySetting.generateID(),
          Destination: AWS_ACS,
          Audience: AWS_AUDIENCE,
          SubjectRecipient: AWS_ACS,
          Issuer: idp.entityMeta.getEntityID(),
          IssueInstant: now.toISOString(),
          StatusCode: samlify.Constants.StatusCode.Success,
          ConditionsNotBefore: now.toISOString(),
          ConditionsNotOnOrAfter: later,
          SubjectConfirmationDataNotOnOrAfter: later,
          NameIDFormat: PERSISTENT,
          NameID: user,
        };
        attributes.forEach(([, vals], i) =>
          vals.forEach((v, j) => {
            values[`attr${i}x${j}`] = v;
          })
        );
        return { id: responseId, context: samlify.SamlLib.replaceTagsByValue(template, values) };
      }
    );
    // Refuse to send what the SAML schemas reject: a broken template is this IdP's bug, not the
    // gateway's, and should not pass for a refusal.
    await validator.validate(Buffer.from(context, 'base64').toString('utf8'));
    return { id, context };
  }

  function autoPost(res, samlResponse64, relayState) {
    const relay =
      relayState === null || relayState === undefined
        ? ''
        : `<input type="hidden" name="RelayState" value="${escapeHtml(relayState)}"/>`;
    const html =
      '<!DOCTYPE html><html><head><title>Signing in to AWS</title></head>' +
      '<body onload="document.forms[0].submit()">' +
      `<form method="post" action="${escapeHtml(acs)}">` +
      `<input type="hidden" name="SAMLResponse" value="${escapeHtml(samlResponse64)}"/>` +
      relay +
      '<noscript><button type="submit">Continue</button></noscript>' +
      '</form></body></html>';
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    res.end(html);
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://idp.invalid');
    try {
      if (req.method !== 'GET') {
        res.writeHead(405, { Allow: 'GET' });
        res.end();
      } else if (url.pathname === '/metadata') {
        res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml' });
        res.end(idp.getMetadata());
      } else if (url.pathname === '/sso' || url.pathname === '/initiate') {
        const user = url.searchParams.get('user') || opts.user;
        const sign = url.searchParams.get('sign') || 'both';
        const relay = url.searchParams.get(url.pathname === '/sso' ? 'RelayState' : 'relay');
        const roles = url.searchParams.getAll('role');
        const { context } = await samlResponse(user, roles.length ? roles : opts.role, sign);
        autoPost(res, context, relay);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found\n');
      }
    } catch (err) {
      process.stderr.write(`idp: ${req.url}: ${err && err.stack ? err.stack : err}\n`);
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`IdP error: ${err}\n`);
    }
  });

  server.listen(Number(opts.port), '127.0.0.1', () => {
    const { port } = server.address();
    const base = `http://127.0.0.1:${port}`;
    idp = samlify.IdentityProvider({
      entityID: `${base}/metadata`,
      privateKey,
      signingCert,
      nameIDFormat: [PERSISTENT],
      singleSignOnService: [{ Binding: POST, Location: `${base}/sso` }],
    });
    process.stdout.write(JSON.stringify({ port, entityID: `${base}/metadata` }) + '\n');
  });

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
