/**
 * @module routeTemplate
 * ASP.NET Core route templates as the Functions HTTP router uses them: literals (case-insensitive),
 * `{name}`, `{name?}`, `{name=default}`, `{*rest}` / `{**rest}` catch-all, `{name:c1:c2(args)}` constraints,
 * complex segments such as `{file}.{ext}`, and `{{` / `}}` escapes. A trailing slash on the request is tolerated.
 */
import { createConstraint, RouteTemplateError, type RouteConstraint } from './routeConstraints.ts';

export { RouteTemplateError } from './routeConstraints.ts';

export interface LiteralPart {
  readonly kind: 'literal';
  readonly text: string;
}

export interface ParameterPart {
  readonly kind: 'parameter';
  readonly name: string;
  readonly optional: boolean;
  readonly catchAll: boolean;
  readonly defaultValue: string | undefined;
  readonly constraints: readonly RouteConstraint[];
}

export type TemplatePart = LiteralPart | ParameterPart;

export interface RouteTemplate {
  readonly text: string;
  readonly segments: readonly (readonly TemplatePart[])[];
}

/** Position just after the `)` closing a constraint's arguments: one followed by `:`, `=`, `?` or the end. */
function findArgsEnd(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === ')') {
      const next = text[i + 1];
      if (next === undefined || next === ':' || next === '=' || next === '?') return i + 1;
    }
  }
  throw new RouteTemplateError(`The inline constraint in '{${text}}' is missing its closing parenthesis.`);
}

function parseParameter(raw: string): ParameterPart {
  let text = raw;
  let catchAll = false;
  if (text.startsWith('**')) {
    catchAll = true;
    text = text.slice(2);
  } else if (text.startsWith('*')) {
    catchAll = true;
    text = text.slice(1);
  }
  let i = 0;
  while (i < text.length && !':=?'.includes(text[i] as string)) i++;
  const name = text.slice(0, i).trim();
  if (name === '' || /[{}/*?=:]/.test(name)) {
    throw new RouteTemplateError(`The route parameter name '${name}' is invalid.`);
  }
  const constraints: RouteConstraint[] = [];
  while (text[i] === ':') {
    const start = i + 1;
    let j = start;
    while (j < text.length && !':=?('.includes(text[j] as string)) j++;
    if (text[j] === '(') j = findArgsEnd(text, j);
    constraints.push(createConstraint(text.slice(start, j)));
    i = j;
  }
  let optional = false;
  let defaultValue: string | undefined;
  if (text[i] === '?') {
    optional = true;
    i++;
    if (i !== text.length)
      throw new RouteTemplateError(`The optional parameter '${name}' must end its definition.`);
  } else if (text[i] === '=') {
    defaultValue = text.slice(i + 1);
    i = text.length;
  }
  if (i !== text.length) throw new RouteTemplateError(`The route parameter '{${raw}}' is malformed.`);
  if (optional && catchAll) throw new RouteTemplateError(`A catch-all parameter cannot be marked optional.`);
  return { kind: 'parameter', name, optional, catchAll, defaultValue, constraints };
}

/** Parses a template such as `api/items/{id:int}/{name?}`. */
export function parseRouteTemplate(template: string): RouteTemplate {
  const trimmed = template
    .trim()
    .replace(/^~?\/+/, '')
    .replace(/\/+$/, '');
  const segments: TemplatePart[][] = [];
  let parts: TemplatePart[] = [];
  let literal = '';
  const flushLiteral = () => {
    if (literal !== '') {
      if (literal.includes('?')) {
        throw new RouteTemplateError(`The literal section '${literal}' is invalid: it cannot contain '?'.`);
      }
      parts.push({ kind: 'literal', text: literal });
      literal = '';
    }
  };
  for (let i = 0; i < trimmed.length; i++) {
    const ch = trimmed[i] as string;
    if (ch === '/') {
      flushLiteral();
      if (parts.length === 0)
        throw new RouteTemplateError(`The route template '${template}' has an empty segment.`);
      segments.push(parts);
      parts = [];
    } else if (ch === '{' && trimmed[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (ch === '}' && trimmed[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (ch === '{') {
      flushLiteral();
      let body = '';
      let j = i + 1;
      for (; j < trimmed.length; j++) {
        const c = trimmed[j];
        if ((c === '{' || c === '}') && trimmed[j + 1] === c) {
          body += c;
          j++;
        } else if (c === '}') break;
        else body += c;
      }
      if (j >= trimmed.length)
        throw new RouteTemplateError(`The route template '${template}' has an unclosed '{'.`);
      const param = parseParameter(body);
      const prev = parts[parts.length - 1];
      if (prev && prev.kind === 'parameter') {
        throw new RouteTemplateError(`Parameters in '${template}' must be separated by a literal.`);
      }
      parts.push(param);
      i = j;
    } else if (ch === '}') {
      throw new RouteTemplateError(`The route template '${template}' has an unmatched '}'.`);
    } else literal += ch;
  }
  flushLiteral();
  if (parts.length > 0) segments.push(parts);

  const names = new Set<string>();
  segments.forEach((segment, index) => {
    for (const part of segment) {
      if (part.kind !== 'parameter') continue;
      const key = part.name.toLowerCase();
      if (names.has(key))
        throw new RouteTemplateError(`The route parameter name '${part.name}' appears more than once.`);
      names.add(key);
      if (part.catchAll && (index !== segments.length - 1 || segment.length !== 1)) {
        throw new RouteTemplateError(
          `A catch-all parameter can only appear as the last segment of the template.`,
        );
      }
      if (part.optional && segment[segment.length - 1] !== part) {
        throw new RouteTemplateError(`An optional parameter must be at the end of its segment.`);
      }
    }
  });
  return { text: trimmed, segments };
}

/**
 * Splits a raw request path into decoded segments. `%2F` stays encoded inside a segment, as in Kestrel; one
 * trailing slash is ignored.
 */
export function splitPath(rawPath: string): string[] {
  let path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
  if (path.endsWith('/')) path = path.slice(0, -1);
  if (path === '') return [];
  return path.split('/').map((segment) => {
    try {
      return decodeURIComponent(segment.replace(/%2F/gi, '%252F'));
    } catch {
      return segment;
    }
  });
}

function passes(param: ParameterPart, value: string): boolean {
  return param.constraints.every((c) => c.test(value));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function matchComplex(segment: readonly TemplatePart[], value: string, out: Record<string, string>): boolean {
  const source = segment
    .map((p) => (p.kind === 'literal' ? escapeRegExp(p.text) : p.optional ? '(.*)' : '(.+)'))
    .join('');
  const m = new RegExp(`^${source}$`, 'is').exec(value);
  if (!m) return false;
  let group = 1;
  for (const part of segment) {
    if (part.kind !== 'parameter') continue;
    const v = m[group++] ?? '';
    if (v === '') {
      if (part.defaultValue !== undefined) out[part.name] = part.defaultValue;
      continue;
    }
    if (!passes(part, v)) return false;
    out[part.name] = v;
  }
  return true;
}

/** Route values when `path` (from {@link splitPath}) matches, else `undefined`. */
export function matchRouteTemplate(
  template: RouteTemplate,
  path: readonly string[],
): Record<string, string> | undefined {
  const values: Record<string, string> = {};
  const segments = template.segments;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as readonly TemplatePart[];
    const value = path[i];
    const only = segment.length === 1 ? segment[0] : undefined;

    if (only?.kind === 'parameter' && only.catchAll) {
      const rest = path.slice(i).join('/');
      const v = rest === '' ? only.defaultValue : rest;
      if (v !== undefined) {
        if (!passes(only, v)) return undefined;
        values[only.name] = v;
      }
      return values;
    }

    if (value === undefined) {
      // every remaining segment must be a lone optional / defaulted parameter
      for (const rest of segments.slice(i)) {
        const p = rest.length === 1 ? rest[0] : undefined;
        if (!p || p.kind !== 'parameter') return undefined;
        if (p.defaultValue !== undefined) {
          if (!passes(p, p.defaultValue)) return undefined;
          values[p.name] = p.defaultValue;
        } else if (!p.optional && !p.catchAll) return undefined;
      }
      return values;
    }

    if (only?.kind === 'literal') {
      if (only.text.toLowerCase() !== value.toLowerCase()) return undefined;
    } else if (only?.kind === 'parameter') {
      if (value === '' || !passes(only, value)) return undefined;
      values[only.name] = value;
    } else if (!matchComplex(segment, value, values)) return undefined;
  }
  return path.length > segments.length ? undefined : values;
}
