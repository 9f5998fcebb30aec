/**
 * @module httpStreams
 * The app runs in HTTP streams mode, Microsoft's recommended mode for Node.js apps ("best performance and
 * reliability", Learn: "HTTP streams" in the Node.js developer guide): the host forwards the HTTP request to the
 * worker instead of copying it into the RPC message. Without it the host copies a body only when
 * `Content-Length > 0` (azure-functions-host `GrpcMessageConversionExtensions.ToRpcHttp`), so a chunked body
 * (.NET `PutAsJsonAsync`, `curl -H 'Transfer-Encoding: chunked'`) would reach the function empty.
 * Loaded by shared/http.ts, which every HTTP function uses, so `app.setup` runs once while the entry points load,
 * before the worker asks for capabilities (after that, setup throws).
 */
import { app } from '@azure/functions';

/** Benchmarks build a variant with this set to false to measure the RPC mode (bench/tokenPath.ts). */
export const HTTP_STREAMS: boolean = true;

app.setup({ enableHttpStream: HTTP_STREAMS });
