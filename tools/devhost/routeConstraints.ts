/**
 * @module routeConstraints
 * ASP.NET Core inline route constraints (Microsoft.AspNetCore.Routing.Constraints), which the Functions HTTP
 * router resolves for `{name:constraint(args)}`. Parsing follows .NET's invariant-culture `TryParse` closely
 * enough for route values: integers allow surrounding whitespace and a sign, `regex` is unanchored and
 * case-insensitive, `alpha` is ASCII letters only.
 */

export class RouteTemplateError extends Error {
  override name = 'RouteTemplateError';
}

export interface RouteConstraint {
  readonly text: string;
  test(value: string): boolean;
}

const INT32 = [-(2n ** 31n), 2n ** 31n - 1n] as const;
const INT64 = [-(2n ** 63n), 2n ** 63n - 1n] as const;

function parseInteger(value: string, [lo, hi]: readonly [bigint, bigint]): bigint | undefined {
  const m = /^\s*([+-]?\d+)\s*$/.exec(value);
  if (!m) return undefined;
  const n = BigInt(m[1] as string);
  return n < lo || n > hi ? undefined : n;
}

const FLOAT = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/;
const HEX = '[0-9a-fA-F]';
const GUID_D = `${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}`;
const GUID = new RegExp(`^\\s*(?:${HEX}{32}|${GUID_D}|\\{${GUID_D}\\}|\\(${GUID_D}\\))\\s*$`);

function intArgs(name: string, args: string[], count: number): bigint[] {
  if (args.length !== count) {
    throw new RouteTemplateError(`The constraint '${name}' needs ${count} integer argument(s).`);
  }
  return args.map((a) => {
    const n = parseInteger(a, INT64);
    if (n === undefined) throw new RouteTemplateError(`The constraint '${name}' has a non-integer argument.`);
    return n;
  });
}

type Factory = (args: string[], name: string) => (value: string) => boolean;

const noArgs =
  (test: (value: string) => boolean): Factory =>
  (args, name) => {
    if (args.length > 0) throw new RouteTemplateError(`The constraint '${name}' takes no arguments.`);
    return test;
  };

const FACTORIES: Record<string, Factory> = {
  int: noArgs((v) => parseInteger(v, INT32) !== undefined),
  long: noArgs((v) => parseInteger(v, INT64) !== undefined),
  bool: noArgs((v) => /^\s*(true|false)\s*$/i.test(v)),
  decimal: noArgs((v) => DECIMAL.test(v)),
  double: noArgs((v) => FLOAT.test(v)),
  float: noArgs((v) => FLOAT.test(v)),
  guid: noArgs((v) => GUID.test(v)),
  datetime: noArgs((v) => v.trim() !== '' && !Number.isNaN(Date.parse(v))),
  alpha: noArgs((v) => /^[a-z]*$/i.test(v)),
  required: noArgs((v) => v !== ''),
  file: noArgs((v) => /\.[^./]+$/.test(v.slice(v.lastIndexOf('/') + 1))),
  nonfile: noArgs((v) => !/\.[^./]+$/.test(v.slice(v.lastIndexOf('/') + 1))),
  length: (args, name) => {
    if (args.length === 1) {
      const [n] = intArgs(name, args, 1) as [bigint];
      return (v) => BigInt(v.length) === n;
    }
    const [lo, hi] = intArgs(name, args, 2) as [bigint, bigint];
    return (v) => BigInt(v.length) >= lo && BigInt(v.length) <= hi;
  },
  minlength: (args, name) => {
    const [n] = intArgs(name, args, 1) as [bigint];
    return (v) => BigInt(v.length) >= n;
  },
  maxlength: (args, name) => {
    const [n] = intArgs(name, args, 1) as [bigint];
    return (v) => BigInt(v.length) <= n;
  },
  min: (args, name) => {
    const [n] = intArgs(name, args, 1) as [bigint];
    return (v) => {
      const x = parseInteger(v, INT64);
      return x !== undefined && x >= n;
    };
  },
  max: (args, name) => {
    const [n] = intArgs(name, args, 1) as [bigint];
    return (v) => {
      const x = parseInteger(v, INT64);
      return x !== undefined && x <= n;
    };
  },
  range: (args, name) => {
    const [lo, hi] = intArgs(name, args, 2) as [bigint, bigint];
    return (v) => {
      const x = parseInteger(v, INT64);
      return x !== undefined && x >= lo && x <= hi;
    };
  },
  regex: (args, name) => {
    // the whole argument text is the pattern (it may contain commas)
    const pattern = args.join(',');
    if (pattern === '') throw new RouteTemplateError(`The constraint '${name}' needs a pattern.`);
    let re: RegExp;
    try {
      re = new RegExp(pattern, 'i');
    } catch {
      throw new RouteTemplateError(`The constraint '${name}' has an invalid regular expression.`);
    }
    return (v) => re.test(v);
  },
};

/** Builds a constraint from its inline text, e.g. `int`, `length(2,4)`, `regex(^a+$)`. */
export function createConstraint(text: string): RouteConstraint {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?$/s.exec(text);
  if (!m) throw new RouteTemplateError(`The inline constraint '${text}' is malformed.`);
  const name = (m[1] as string).toLowerCase();
  const factory = FACTORIES[name];
  if (!factory) {
    throw new RouteTemplateError(
      `The constraint reference '${m[1]}' could not be resolved to a known constraint.`,
    );
  }
  const argText = m[2];
  const args =
    argText === undefined ? [] : name === 'regex' ? [argText] : argText.split(',').map((a) => a.trim());
  return { text, test: factory(args, name) };
}
