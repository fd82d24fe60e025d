import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());

// waitFor/findBy give up after 1 s by default: on a loaded 2-core CI machine a page's re-render can
// take longer (PromptPage's arrow-key step timed out once that way). A real failure still fails.
configure({ asyncUtilTimeout: 5_000 });
