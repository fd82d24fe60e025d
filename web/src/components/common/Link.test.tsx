import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { Link } from "./Link";

afterEach(() => window.history.replaceState(null, "", "/"));

describe("Link", () => {
  it("navigates in the app on a plain click and leaves modified clicks to the browser", () => {
    render(<Link href="/explore?q=x" data-testid="l">go</Link>);
    const a = screen.getByTestId("l");
    expect(a).toHaveAttribute("href", "/explore?q=x");
    for (const mod of [{ ctrlKey: true }, { metaKey: true }, { shiftKey: true }, { button: 1 }]) {
      expect(fireEvent.click(a, mod)).toBe(true); // not prevented: a new tab or window
      expect(window.location.pathname).toBe("/");
    }
    expect(fireEvent.click(a)).toBe(false); // prevented: the app navigates instead
    expect(window.location.pathname + window.location.search).toBe("/explore?q=x");
  });
});
