import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  matchRouteTemplate,
  parseRouteTemplate,
  RouteTemplateError,
  splitPath,
} from '../../../tools/devhost/routeTemplate.ts';
import { buildRouteTable, compareFunctionNames, isReservedRoute } from '../../../tools/devhost/routing.ts';

const match = (template: string, path: string) =>
  matchRouteTemplate(parseRouteTemplate(template), splitPath(path));

void describe('splitPath', () => {
  void it('decodes segments, keeps %2F encoded and ignores one trailing slash', () => {
    assert.deepEqual(splitPath('/api/a%20b/c%2Fd/'), ['api', 'a b', 'c%2Fd']);
    assert.deepEqual(splitPath('/'), []);
    assert.deepEqual(splitPath('/api//x'), ['api', '', 'x']);
    assert.deepEqual(splitPath('/bad%zz'), ['bad%zz']);
  });
});

void describe('route templates', () => {
  void it('matches literals case-insensitively and tolerates a trailing slash', () => {
    assert.deepEqual(match('api/Items/{id}/Details', '/API/items/7/details/'), { id: '7' });
    assert.equal(match('api/items', '/api/items/extra'), undefined);
    assert.equal(match('api/items/{id}', '/api/items'), undefined);
    assert.equal(match('api/items/{id}', '/api/items//'), undefined);
  });

  void it('handles optional parameters, defaults and catch-all', () => {
    assert.deepEqual(match('opt/{a}/{b?}', '/opt/1'), { a: '1' });
    assert.deepEqual(match('opt/{a}/{b?}', '/opt/1/2'), { a: '1', b: '2' });
    assert.deepEqual(match('def/{v=fallback}', '/def'), { v: 'fallback' });
    assert.deepEqual(match('def/{v=fallback}', '/def/given'), { v: 'given' });
    assert.deepEqual(match('files/{*path}', '/files/a/b%20c/d.txt'), { path: 'a/b c/d.txt' });
    assert.deepEqual(match('files/{**path}', '/files'), {});
    assert.deepEqual(match('files/{*path=index}', '/files'), { path: 'index' });
  });

  void it('applies each constraint', () => {
    const cases: [string, string, boolean][] = [
      ['{v:int}', '42', true],
      ['{v:int}', '-7', true],
      ['{v:int}', '4.2', false],
      ['{v:int}', '2147483648', false],
      ['{v:long}', '2147483648', true],
      ['{v:alpha}', 'abcXYZ', true],
      ['{v:alpha}', 'abc1', false],
      ['{v:bool}', 'TRUE', true],
      ['{v:bool}', 'yes', false],
      ['{v:guid}', '6F9619FF-8B86-D011-B42D-00C04FC964FF', true],
      ['{v:guid}', '6f9619ff8b86d011b42d00c04fc964ff', true],
      ['{v:guid}', '{6f9619ff-8b86-d011-b42d-00c04fc964ff}', true],
      ['{v:guid}', '6f9619ff-8b86-d011-b42d', false],
      ['{v:length(3)}', 'abc', true],
      ['{v:length(3)}', 'abcd', false],
      ['{v:length(2,4)}', 'ab', true],
      ['{v:length(2,4)}', 'abcde', false],
      ['{v:minlength(2)}', 'a', false],
      ['{v:maxlength(2)}', 'ab', true],
      ['{v:min(10)}', '10', true],
      ['{v:min(10)}', '9', false],
      ['{v:min(10)}', 'ten', false],
      ['{v:max(10)}', '10', true],
      ['{v:max(10)}', '11', false],
      ['{v:range(1,5)}', '5', true],
      ['{v:range(1,5)}', '0', false],
      ['{v:double}', '1.5e3', true],
      ['{v:decimal}', '1.5e3', false],
      ['{v:regex(^ab+c$)}', 'ABBC', true],
      ['{v:regex(^ab+c$)}', 'ac', false],
      ['{v:regex(b)}', 'abc', true],
      ['{v:regex(^\\d{{3}}$)}', '123', true],
      ['{v:regex(^\\d{{3}}$)}', '1234', false],
      ['{v:regex(^(a|b)$)}', 'b', true],
      ['{v:int:max(10)}', '10', true],
      ['{v:int:max(10)}', '11', false],
      ['{v:int:max(10)}', 'x', false],
      ['{v:alpha:length(2)}', 'ab', true],
      ['{v:alpha:length(2)}', 'a1', false],
    ];
    for (const [template, value, ok] of cases) {
      const result = match(`c/${template}`, `/c/${value}`);
      assert.equal(result !== undefined, ok, `${template} with ${value}`);
      if (ok) assert.equal(result?.v, value);
    }
  });

  void it('supports optional constrained parameters and complex segments', () => {
    assert.deepEqual(match('q/{qty:int:max(10)?}', '/q'), {});
    assert.deepEqual(match('q/{qty:int:max(10)?}', '/q/3'), { qty: '3' });
    assert.equal(match('q/{qty:int:max(10)?}', '/q/30'), undefined);
    assert.deepEqual(match('f/{name}.{ext}', '/f/archive.tar.gz'), { name: 'archive.tar', ext: 'gz' });
    assert.deepEqual(match('f/v{major:int}', '/f/V2'), { major: '2' });
    assert.deepEqual(match('lit/{{x}}', '/lit/{x}'), {});
  });

  void it('rejects invalid templates', () => {
    for (const bad of [
      'a/{*rest}/b',
      'a/{x:unknown}',
      'a/{x}/{X}',
      'a/{x',
      'a/x}',
      'a//b',
      'a/{}',
      'a/{x?}b',
      'a/{*x?}',
      'a/{x}{y}',
      'a/b?c',
      'a/{x:length(a)}',
      'a/{x:regex(()}',
    ]) {
      assert.throws(() => parseRouteTemplate(bad), RouteTemplateError, bad);
    }
  });
});

void describe('route table', () => {
  const def = (functionName: string, route: string | undefined, methods?: string[]) => ({
    functionName,
    route,
    methods,
    value: functionName,
  });

  void it('orders by function name (ordinal ignore case), first match wins', () => {
    const table = buildRouteTable(
      [def('zzz', 'prec/fixed'), def('AAA', 'prec/{any}'), def('mmm', 'prec/other')],
      'api',
    );
    assert.deepEqual(
      table.routes.map((r) => r.functionName),
      ['AAA', 'mmm', 'zzz'],
    );
    assert.equal(table.match('GET', splitPath('/api/prec/fixed'))?.route.functionName, 'AAA');
    assert.ok(compareFunctionNames('b', 'A') > 0);
  });

  void it('defaults the route to the function name and honours the prefix', () => {
    const table = buildRouteTable([def('Health', undefined), def('blank', '  ')], '');
    assert.equal(table.match('GET', ['health'])?.route.functionName, 'Health');
    assert.equal(table.match('GET', ['BLANK'])?.route.functionName, 'blank');
    const prefixed = buildRouteTable([def('x', 'y')], '/v1/api/');
    assert.deepEqual(prefixed.match('get', ['v1', 'api', 'y'])?.params, {});
    assert.equal(prefixed.match('get', ['y']), undefined);
  });

  void it('filters by method (a non-listed method does not match)', () => {
    const table = buildRouteTable([def('p', 'thing', ['POST']), def('all', 'any', [])], 'api');
    assert.equal(table.match('GET', ['api', 'thing']), undefined);
    assert.equal(table.match('post', ['api', 'thing'])?.route.functionName, 'p');
    assert.equal(table.match('OPTIONS', ['api', 'any'])?.route.functionName, 'all');
  });

  void it('rejects reserved and conflicting routes', () => {
    assert.equal(isReservedRoute('admin/x'), true);
    assert.equal(isReservedRoute(' /Administration'), true);
    assert.equal(isReservedRoute('runtimeInfo'), true);
    assert.equal(isReservedRoute('manage/admin'), false);
    assert.throws(() => buildRouteTable([def('f', 'Admin/users')], 'api'), RouteTemplateError);
    assert.throws(() => buildRouteTable([def('adminUsers', undefined)], 'api'), RouteTemplateError);
    assert.throws(
      () => buildRouteTable([def('a', 'same/{x}', ['GET']), def('b', '/SAME/{x}/', ['GET', 'POST'])], 'api'),
      /conflicts with the route defined by function 'a'/,
    );
    assert.doesNotThrow(() =>
      buildRouteTable([def('a', 'same', ['GET']), def('b', 'same', ['POST'])], 'api'),
    );
    assert.throws(() => buildRouteTable([def('a', 'same', ['GET']), def('b', 'same', undefined)], 'api'));
  });
});
