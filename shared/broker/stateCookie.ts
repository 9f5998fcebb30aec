/** The sealed login cookie set by `connect` and read by `callback` (DESIGN §4). */
export const STATE_COOKIE_NAME = '__Host-token-broker-login';
export const STATE_COOKIE_MAX_AGE_SECONDS = 600;
