// Used by the knex CLI (`npx knex migrate:latest`); `luxjob migrate` uses the same settings.

import { databaseUrlFromEnv } from './src/config';
import { knexConfigFromUrl } from './src/db';
import { MIGRATIONS } from './src/migrations-config';

const { config } = knexConfigFromUrl(databaseUrlFromEnv());

export default { ...config, migrations: MIGRATIONS };
