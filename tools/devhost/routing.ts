/**
 * @module routing
 * The host's HTTP route table: template = `routePrefix/route` (route defaults to the function name), routes
 * starting with `admin`/`runtime` rejected, duplicate routes with overlapping methods rejected, and precedence
 * by function name (ordinal, case-insensitive) with the first match winning — registration order, not
 * specificity (HOST `ScriptHost.cs`, `FunctionMetadataManager.cs`; EXT `WebJobsRouteBuilder.cs`). A method
 * outside the route's list makes the route not match, so the caller sees 404, not 405.
 */
import {
  matchRouteTemplate,
  parseRouteTemplate,
  RouteTemplateError,
  type RouteTemplate,
} from './routeTemplate.ts';

export interface RouteDefinition<T> {
  readonly functionName: string;
  /** The trigger's `route`, or undefined/blank for the default (the function name). */
  readonly route: string | undefined;
  /** Upper-case methods; undefined or empty = every method. */
  readonly methods: readonly string[] | undefined;
  readonly value: T;
}

export interface Route<T> {
  readonly functionName: string;
  /** The effective route without the prefix, as configured. */
  readonly route: string;
  readonly template: RouteTemplate;
  readonly methods: ReadonlySet<string> | undefined;
  readonly value: T;
}

export interface RouteMatch<T> {
  readonly route: Route<T>;
  readonly params: Record<string, string>;
}

/** OrdinalIgnoreCase order, as the host sorts function metadata. */
export function compareFunctionNames(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isReservedRoute(route: string): boolean {
  const r = route.trim().replace(/^\/+/, '').toLowerCase();
  return r.startsWith('admin') || r.startsWith('runtime');
}

function normalizeRoute(route: string): string {
  return route
    .trim()
    .replace(/^\/+|\/+$/g, '')
    .toLowerCase();
}

function methodsOverlap(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (!a || !b) return true;
  for (const m of a) if (b.has(m)) return true;
  return false;
}

export class RouteTable<T> {
  readonly routes: readonly Route<T>[];

  constructor(routes: readonly Route<T>[]) {
    this.routes = routes;
  }

  /** First route (in precedence order) whose template and method match. */
  match(method: string, path: readonly string[]): RouteMatch<T> | undefined {
    const upper = method.toUpperCase();
    for (const route of this.routes) {
      if (route.methods && !route.methods.has(upper)) continue;
      const params = matchRouteTemplate(route.template, path);
      if (params) return { route, params };
    }
    return undefined;
  }
}

/** Validates every definition like the host does at indexing time; throws on the first problem. */
export function buildRouteTable<T>(
  definitions: readonly RouteDefinition<T>[],
  routePrefix: string,
): RouteTable<T> {
  const prefix = routePrefix.trim().replace(/^\/+|\/+$/g, '');
  const sorted = [...definitions].sort((a, b) => compareFunctionNames(a.functionName, b.functionName));
  const routes: Route<T>[] = [];
  for (const def of sorted) {
    const route = def.route === undefined || def.route.trim() === '' ? def.functionName : def.route;
    if (isReservedRoute(route)) {
      throw new RouteTemplateError(
        `Function '${def.functionName}': the specified route '${route}' conflicts with one or more built in routes ` +
          `(routes may not start with 'admin' or 'runtime').`,
      );
    }
    let template: RouteTemplate;
    try {
      const relative = route.trim().replace(/^\/+/, '');
      template = parseRouteTemplate(prefix === '' ? relative : `${prefix}/${relative}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new RouteTemplateError(`Function '${def.functionName}': invalid route '${route}': ${message}`);
    }
    const methods =
      def.methods && def.methods.length > 0 ? new Set(def.methods.map((m) => m.toUpperCase())) : undefined;
    const clash = routes.find(
      (r) => normalizeRoute(r.route) === normalizeRoute(route) && methodsOverlap(r.methods, methods),
    );
    if (clash) {
      throw new RouteTemplateError(
        `Function '${def.functionName}': the route specified conflicts with the route defined by function ` +
          `'${clash.functionName}'.`,
      );
    }
    routes.push({ functionName: def.functionName, route, template, methods, value: def.value });
  }
  return new RouteTable(routes);
}
