import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideRequestedScopes,
  distinctResources,
  isSubsetOfGranted,
  parseScopeParam,
  primaryResourceScopes,
  resourceOf,
  scopeKey,
} from '../../../shared/oauth/scopes.ts';

describe('Microsoft scopes', () => {
  it('finds the resource of a scope', () => {
    assert.equal(resourceOf('https://graph.microsoft.com/Mail.Send'), 'https://graph.microsoft.com');
    assert.equal(resourceOf('Mail.Send'), 'https://graph.microsoft.com');
    assert.equal(resourceOf('https://ads.microsoft.com/msads.manage'), 'https://ads.microsoft.com');
    assert.equal(resourceOf('api://1234/.default'), 'api://1234');
    assert.equal(resourceOf('offline_access'), undefined);
  });
  it('keeps one resource per token request', () => {
    const s = [
      'openid',
      'https://graph.microsoft.com/Mail.Send',
      'https://ads.microsoft.com/msads.manage',
      'https://graph.microsoft.com/User.Read',
    ];
    assert.deepEqual(primaryResourceScopes(s), [
      'https://graph.microsoft.com/Mail.Send',
      'https://graph.microsoft.com/User.Read',
    ]);
    assert.deepEqual(distinctResources(s), ['https://graph.microsoft.com', 'https://ads.microsoft.com']);
  });
  it('normalises cache keys and checks consent', () => {
    assert.equal(scopeKey(['b', 'a', 'offline_access', 'a']), 'a b');
    assert.equal(isSubsetOfGranted(['Mail.Send'], ['https://graph.microsoft.com/Mail.Send']), true);
    assert.equal(
      isSubsetOfGranted(
        ['https://ads.microsoft.com/msads.manage'],
        ['https://graph.microsoft.com/Mail.Send'],
      ),
      false,
    );
  });

  describe('the /.default rule', () => {
    const G = 'https://graph.microsoft.com';
    const mailOnly = [`${G}/Mail.Send`];
    it('on a Mail.Send-only connection, Graph .default asks for the granted scope, never for .default', () => {
      assert.deepEqual(decideRequestedScopes([`${G}/.default`], mailOnly), { ok: true, scopes: mailOnly });
      // Case-insensitive resource and suffix; short Graph names in the grant count for Graph.
      assert.deepEqual(
        decideRequestedScopes(['HTTPS://GRAPH.MICROSOFT.COM/.DEFAULT'], ['Mail.Send', 'User.Read']),
        {
          ok: true,
          scopes: ['Mail.Send', 'User.Read'],
        },
      );
    });
    it('refuses .default of a resource the connection holds nothing on', () => {
      for (const other of [
        'https://ads.microsoft.com/.default',
        'api://11111111-2222-3333-4444-555555555555/.default',
      ]) {
        const d = decideRequestedScopes([other], [...mailOnly, 'openid', 'offline_access']);
        assert.equal(d.ok, false, other);
        assert.equal(!d.ok && d.code, 'scope_not_granted');
      }
      assert.equal(isSubsetOfGranted(['https://ads.microsoft.com/.default'], mailOnly), false);
    });
    it('refuses .default mixed with other scopes (Microsoft does too)', () => {
      const d = decideRequestedScopes([`${G}/.default`, `${G}/Mail.Send`], mailOnly);
      assert.equal(!d.ok && d.code, 'invalid_request');
    });
    it('passes .default through only when the connection consented to .default itself', () => {
      assert.deepEqual(decideRequestedScopes([`${G}/.default`], [`${G}/.default`, `${G}/Mail.Send`]), {
        ok: true,
        scopes: [`${G}/.default`],
      });
    });
    it('named scopes must each be granted; OIDC scopes are ignored', () => {
      assert.deepEqual(decideRequestedScopes(['openid', 'Mail.Send'], mailOnly), {
        ok: true,
        scopes: ['openid', 'Mail.Send'],
      });
      assert.equal(decideRequestedScopes(['Mail.Send', 'Mail.Read'], mailOnly).ok, false);
    });
  });
});

describe('scope edge cases (from surviving mutants)', () => {
  it('a resource URI ending in a slash keeps none of it (Azure Resource Manager: management.core.windows.net//)', () => {
    assert.equal(
      resourceOf('https://management.core.windows.net//user_impersonation'),
      'https://management.core.windows.net',
    );
  });
  it('a prefix that is no URI scheme (schemes start with a letter) is a Graph scope', () => {
    assert.equal(resourceOf('1api://x/y'), 'https://graph.microsoft.com');
  });
  it('only OIDC scopes: no primary resource scopes', () => {
    assert.deepEqual(primaryResourceScopes(['openid', 'offline_access']), []);
  });
  it('named scopes compare in full form on both sides; one scope not granted is refused', () => {
    assert.deepEqual(decideRequestedScopes(['https://graph.microsoft.com/Mail.Send'], ['Mail.Send']), {
      ok: true,
      scopes: ['https://graph.microsoft.com/Mail.Send'],
    });
    assert.deepEqual(decideRequestedScopes(['https://graph.microsoft.com/Mail.Read'], ['Mail.Send']), {
      ok: false,
      code: 'scope_not_granted',
      reason: 'scope not granted',
    });
  });
  it('a resource URI: a scheme with one slash still names one, a URI without a host does not, trailing slashes go', () => {
    assert.equal(resourceOf('api:/app/Read'), 'api:/app');
    assert.equal(resourceOf('https:///x/Read'), 'https://graph.microsoft.com');
    assert.equal(resourceOf('https://api.contoso.example///Read'), 'https://api.contoso.example');
  });
  it('scopes compare by lower case: a look-alike that only upper-casing would merge (dotless ı) is not granted', () => {
    // 'ı'.toUpperCase() is 'I', so upper-case folding would treat Maıl.Send as Mail.Send.
    assert.equal(decideRequestedScopes(['Mail.Send'], ['Ma\u0131l.Send']).ok, false);
    assert.equal(decideRequestedScopes(['MAIL.SEND'], ['Mail.Send']).ok, true);
  });
  it('OIDC scopes in a grant grant nothing on a resource', () => {
    assert.deepEqual(decideRequestedScopes(['https://graph.microsoft.com/email'], ['openid', 'email']), {
      ok: false,
      code: 'scope_not_granted',
      reason: 'scope not granted',
    });
  });
  it('.default asks only for the scopes held on that resource, not those on others', () => {
    assert.deepEqual(
      decideRequestedScopes(
        ['https://graph.microsoft.com/.default'],
        ['https://ads.microsoft.com/msads.manage', 'https://graph.microsoft.com/Mail.Send', 'offline_access'],
      ),
      { ok: true, scopes: ['https://graph.microsoft.com/Mail.Send'] },
    );
  });
  it('.default in another spelling than the one granted asks for the named scopes, never for .default', () => {
    // Graph by application id; the grant holds Graph's .default in URL form and a named scope.
    assert.deepEqual(
      decideRequestedScopes(
        ['00000003-0000-0000-c000-000000000000/.default'],
        ['https://graph.microsoft.com/.default', 'Mail.Send'],
      ),
      { ok: true, scopes: ['Mail.Send'] },
    );
  });
  it('?scope= splits on spaces and on + (a form-encoded space), dropping empties', () => {
    assert.deepEqual(parseScopeParam(' Mail.Send+User.Read  offline_access '), [
      'Mail.Send',
      'User.Read',
      'offline_access',
    ]);
    assert.deepEqual(parseScopeParam(''), []);
  });
});
