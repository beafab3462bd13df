# syntax=docker/dockerfile:1
# The dfn image: one image whose subcommands are the operator, the gateway and the runners
# (`dfn operator`, `dfn gateway`, `dfn runner`). Build: docker build -t ghcr.io/dfn-dev/dfn:0.1.0 .
# test/chart/image.test.ts assembles the runtime stage's COPY lines into a directory and runs what the chart runs.

ARG NODE_VERSION=24

# Node with what isolated-vm (a native addon) compiles with: python3, make, g++.
FROM node:${NODE_VERSION}-bookworm-slim AS toolchain
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./

# Production dependencies, isolated-vm compiled for this image's Node.
FROM toolchain AS deps
RUN npm ci --omit=dev && npm cache clean --force

# The TypeScript build (needs the dev dependencies: tsc, esbuild for the sandbox prelude).
FROM toolchain AS build
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-prelude.mjs ./scripts/
COPY api ./api
COPY lib ./lib
COPY local ./local
COPY sandbox ./sandbox
COPY runner ./runner
COPY gateway ./gateway
COPY operator ./operator
COPY cli ./cli
COPY bin ./bin
RUN npm run build

# What runs: Node, the production dependencies and the build output; no compilers, no sources, no npm cache.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The non-root user runner pods run as (the operator sets runAsUser 65532; the chart does the same).
USER 65532:65532
# The entrypoint is dfn, so a Pod's args alone choose the subcommand: args: [runner, --config, …].
ENTRYPOINT ["node", "--no-node-snapshot", "/app/bin/dfn.js"]
CMD ["--help"]
