# The one image for the operator and the agent: `tidemark operator ...`, `tidemark agent ...`.

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:22-bookworm-slim
# pg_dump must be at least the server's major version (bookworm ships PostgreSQL 15 and
# MariaDB 10.11 clients); add PGDG's newer postgresql-client-NN when supporting newer servers.
RUN apt-get update \
  && apt-get install -y --no-install-recommends postgresql-client mariadb-client zstd ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# HOME in /tmp: the root filesystem is mounted read-only and /tmp is the only writable path.
ENV NODE_ENV=production HOME=/tmp
# package.json is needed at run time: it makes dist/ ESM and holds the version.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
