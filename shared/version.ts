/** Set by the production build (tools/build.ts); `dev` when running from source. */
export const BROKER_VERSION: string = process.env.BROKER_BUILD_VERSION ?? 'dev';
