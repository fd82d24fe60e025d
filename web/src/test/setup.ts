import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());

// waitFor/findBy give up after 1 s by default: on a loaded 2-core CI machine a page's re-render can
// take longer. A real failure still fails. (PromptPage's arrow-key step, once blamed on this, was a
// shortcut reading the page before its last render: see useShortcuts.test.tsx.)
configure({ asyncUtilTimeout: 5_000 });
