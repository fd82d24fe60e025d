import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { CandidatesTable, pinCandidates } from "./CandidatesTable";

const c = (token: string, rank: number, id = rank + 1) => ({ id, token, logit: 10 - rank, prob: 0.5 / (rank + 1), rank });
const spec = { targets: [" Mary"], distractors: [" John"], targetIds: [], distractorIds: [] };

describe("candidates table", () => {
  it("pins targets then distractors on top, the rest by rank", () => {
    const rows = pinCandidates([c(" the", 0), c(" his", 1), c(" John", 2), c(" a", 3), c(" Mary", 40)], spec);
    expect(rows.map((r) => [r.row.token, r.role])).toEqual([
      [" Mary", "target"], [" John", "distractor"], [" the", null], [" his", null], [" a", null],
    ]);
  });

  it("pins by token id too (a multi-token target's first token)", () => {
    const rows = pinCandidates([c(" the", 0), c(" Ma", 1, 77)], { ...spec, targets: [" Mary Smith"], targetIds: [77] });
    expect(rows[0]?.row.token).toBe(" Ma");
    expect(rows[0]?.role).toBe("target");
  });

  it("renders pinned rows marked, with rank, logit and prob", () => {
    render(<CandidatesTable candidates={[c(" the", 0), c(" Mary", 5)]} spec={spec} testId="cands" />);
    const body = screen.getByTestId("cands").querySelector("tbody")!;
    const first = within(body).getAllByRole("row")[0]!;
    expect(first).toHaveAttribute("data-role", "target");
    expect(first).toHaveClass("pinned");
    expect(first).toHaveTextContent("6"); // rank 5 shown 1-based
    expect(first).toHaveTextContent("T");
    expect(within(body).getAllByRole("row")[1]).toHaveAttribute("data-role", "");
  });
});
