#!/usr/bin/env node
// Refuses to go on under a Node.js older than package.json "engines" allows, in ONE clear line, before anything
// else fails with a cryptic error (Node 20 cannot load the .ts tools: ERR_UNKNOWN_FILE_EXTENSION; undici 8 needs
// >= 22.19). npm only warns about "engines" (EBADENGINE) unless engine-strict is set, so the npm scripts
// `preinstall`, `prebuild` and `prestart` run this file, and tools/start.ts calls it first.
// Plain CommonJS with no dependencies and no syntax newer than Node 12, so any old Node can run it.
'use strict';
/* global require, module, process, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose (see above) */
const fs = require('fs');
const path = require('path');

/** [major, minor, patch] of "v22.19.0" / "22.19" / ">=22.19.0". */
function parse(version) {
  const m = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(String(version));
  return m ? [Number(m[1]), Number(m[2] || 0), Number(m[3] || 0)] : undefined;
}

function atLeast(actual, floor) {
  for (let i = 0; i < 3; i += 1) {
    if (actual[i] !== floor[i]) return actual[i] > floor[i];
  }
  return true;
}

/** The floor from package.json "engines.node", which must be a plain ">=X.Y[.Z]". */
function requiredFloor(packageJsonPath) {
  const pkg = JSON.parse(fs.readFileSync(packageJsonPath, 'utf8'));
  const range = pkg.engines && pkg.engines.node;
  if (typeof range !== 'string' || !/^>=\s*\d+(\.\d+){0,2}$/.test(range.trim())) {
    throw new Error('package.json "engines.node" must be ">=X.Y.Z", got ' + JSON.stringify(range));
  }
  return { range: range.trim(), floor: parse(range) };
}

/** undefined when `version` satisfies the floor, else the one-line message to print. */
function problem(version, packageJsonPath) {
  const required = requiredFloor(packageJsonPath);
  const actual = parse(version);
  if (actual && atLeast(actual, required.floor)) return undefined;
  return (
    'token-broker needs Node.js ' +
    required.range +
    ' (package.json "engines"), but this is Node.js ' +
    version +
    ' at ' +
    process.execPath +
    '. Install Node.js ' +
    required.floor.join('.') +
    ' or newer (e.g. `nvm install 22`) and run the command again.'
  );
}

module.exports = { parse, atLeast, problem };

if (require.main === module) {
  const message = problem(process.version, path.join(__dirname, '..', 'package.json'));
  if (message) {
    process.stderr.write(message + '\n');
    process.exit(1);
  }
}
