// Environment for running the git CLI in tests: an isolated HOME, no system config, no
// prompts, a fixed identity, and none of the caller's GIT_* variables.
import { mkdirSync } from "node:fs";
import path from "node:path";

export function isolatedGitEnv(home) {
  mkdirSync(home, { recursive: true });
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GIT_")) env[k] = v;
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_AUTHOR_NAME: "Tester",
    GIT_AUTHOR_EMAIL: "tester@example.com",
    GIT_COMMITTER_NAME: "Tester",
    GIT_COMMITTER_EMAIL: "tester@example.com",
  };
}
