/**
 * The architecture's arrows, checked on every `npm test` (scripts/test.sh → `npm run depcheck`). See
 * docs/architecture.md for the layers these rules keep one-way.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycle',
      comment: 'Folders of src/ depend on each other one way only: a cycle between two folders means a layer is in the wrong place.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-module-cycle',
      severity: 'error',
      from: { path: '^(src|bench)/' },
      to: { circular: true },
    },
    {
      name: 'only-through-index',
      comment: "Another folder's files are imported only through its index.ts, the folder's public surface.",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'bench-through-index',
      comment: 'Benchmarks drive vmfork like any caller: through the folders\' index.ts.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'cli-not-the-store',
      comment: 'The CLI calls the same service functions the API server will; only its composition root opens the store.',
      severity: 'error',
      from: { path: '^src/cli/', pathNot: '^src/cli/context\\.ts$' },
      to: { path: '^src/store/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'leaves-stay-leaves',
      comment: 'errors, util, spec and state are the leaves every layer builds on: they import no other folder.',
      severity: 'error',
      from: { path: '^src/(util|spec|state)/' },
      to: { path: '^src/', pathNot: ['^src/(util|spec|state)/', '^src/errors\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
