// ESLint: typescript-eslint's type-checked recommended rules over the sources, tests and
// benchmarks (the generated code in gen/ is buf's, not ours).
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/", "gen/", "node_modules/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `async` is how a function that implements a Promise-returning contract (a port, an RPC
      // handler) turns what it throws into a rejection; it need not await anything.
      "@typescript-eslint/require-await": "off",
      // A leading underscore marks what a signature must take but this implementation does not use.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // jest's asymmetric matchers (expect.any, expect.objectContaining…) are typed any: these
      // two rules would have every assertion that uses one cast it.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
  { files: ["**/*.js", "**/*.cjs", "**/*.mjs"], extends: [tseslint.configs.disableTypeChecked], languageOptions: { globals: globals.node } },
);
