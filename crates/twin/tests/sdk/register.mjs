// `node --import ./register.mjs …` installs the SDK loading hooks (hooks.mjs).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
