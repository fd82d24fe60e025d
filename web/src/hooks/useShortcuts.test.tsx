import { render, screen } from "@testing-library/react";
import { useEffect, useState } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { useShortcuts } from "./useShortcuts";

const env = globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean };
const actEnvironment = env.IS_REACT_ACT_ENVIRONMENT;
afterEach(() => {
  env.IS_REACT_ACT_ENVIRONMENT = actEnvironment;
});

/** Shows 0, then 1 once a fetch-like promise resolves; "x" records the count it acted on. */
function Counter({ seen }: { seen: number[] }) {
  const [n, setN] = useState(0);
  useEffect(() => void Promise.resolve().then(() => setN(1)), []);
  useShortcuts({ x: () => seen.push(n), y: n > 0 ? () => seen.push(-n) : null });
  return <span data-testid="count">{n}</span>;
}

describe("useShortcuts", () => {
  it("a key pressed as soon as a render shows acts on that render", async () => {
    // As in a browser (and in waitFor): renders and their passive effects are scheduled, not
    // flushed by act. A key pressed the moment the DOM changes must already see the new state.
    env.IS_REACT_ACT_ENVIRONMENT = false;
    const seen: number[] = [];
    render(<Counter seen={seen} />);
    const el = screen.getByTestId("count");
    await new Promise<void>((done) => {
      const watch = new MutationObserver(() => {
        if (el.textContent !== "1") return;
        watch.disconnect();
        window.dispatchEvent(new KeyboardEvent("keydown", { key: "x" }));
        window.dispatchEvent(new KeyboardEvent("keydown", { key: "y" }));
        done();
      });
      watch.observe(el, { childList: true, characterData: true, subtree: true });
    });
    expect(seen).toEqual([1, -1]);
  });

  it("ignores keys typed into text fields and with modifiers", () => {
    const seen: number[] = [];
    render(
      <>
        <Counter seen={seen} />
        <input data-testid="field" />
      </>,
    );
    screen.getByTestId("field").dispatchEvent(new KeyboardEvent("keydown", { key: "x", bubbles: true }));
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "x", ctrlKey: true }));
    expect(seen).toEqual([]);
  });
});
