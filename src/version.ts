/** The package version, read once from package.json. */
export const VERSION: string = (require('../package.json') as { version: string }).version;
