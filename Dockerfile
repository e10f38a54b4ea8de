# The one image for the operator and the agent: `tidemark operator ...`, `tidemark agent ...`.

FROM node:26-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:26-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:26-bookworm-slim
# pg_dump refuses servers newer than itself and bookworm ships PostgreSQL 15: the client tools come
# from PGDG's repository, newest major only (pg_dump reads every server from 9.2 up; the agent uses
# the newest pg_dump it finds: docs/sources.md). The MariaDB client is Debian's (10.11).
ARG POSTGRESQL_CLIENT_MAJOR=18
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl \
  && install -d /usr/share/postgresql-common/pgdg \
  && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
    https://www.postgresql.org/media/keys/ACCC4CF8.asc \
  && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
    >/etc/apt/sources.list.d/pgdg.list \
  && apt-get update \
  && apt-get install -y --no-install-recommends "postgresql-client-${POSTGRESQL_CLIENT_MAJOR}" mariadb-client zstd \
  && apt-get purge -y curl && apt-get autoremove -y \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# HOME in /tmp: the root filesystem is mounted read-only and /tmp is the only writable path.
ENV NODE_ENV=production HOME=/tmp
# package.json is needed at run time: it makes dist/ ESM and holds the version.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
# --max-semi-space-size: src/cli/runtime-flags.ts
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/cli/main.js"]
