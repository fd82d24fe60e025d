import { render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../../client/api";
import { mockServer } from "../../test/mockServer";
import { EditorPanel } from "../Editors/EditorPanel";
import { directionDraft } from "../Editors/directionDraft";
import { LOGIT_DIFF } from "../../lib/debugDirection";
import { editorOfField, ErrorBox } from "./ErrorBox";

afterEach(() => vi.unstubAllGlobals());

const draft = {
  prompt: "When Mary and John", prompt2: null, targets: ["Mary"], distractors: [" John"], direction: directionDraft(LOGIT_DIFF, 2),
};

describe("error display", () => {
  it("shows the ErrorBody message and its field", () => {
    render(<ErrorBox error={new ApiError(422, "k is 500; the limit is 100 (max_k)", "k")} />);
    expect(screen.getByRole("alert")).toHaveTextContent("k is 500; the limit is 100 (max_k)");
    expect(screen.getByRole("alert")).toHaveTextContent("field k");
  });

  it("maps error fields to editors", () => {
    expect(editorOfField("targets.0")).toBe("targets");
    expect(editorOfField("interventions[1]")).toBe("interventions");
    expect(editorOfField("prompt2")).toBe("prompt2");
    expect(editorOfField("body")).toBeNull();
    expect(editorOfField(null)).toBeNull();
  });

  it("highlights the editor the error is about, and only that one", async () => {
    mockServer();
    const { container, rerender } = render(
      <EditorPanel draft={draft} onChange={() => {}} onSubmit={() => {}} errorField="targets" tracing={false} loading={false} />,
    );
    expect(container.querySelector('[data-field="targets"]')).toHaveClass("invalid");
    expect(container.querySelector('[data-field="prompt"]')).not.toHaveClass("invalid");
    rerender(<EditorPanel draft={draft} onChange={() => {}} onSubmit={() => {}} errorField="prompt" tracing={false} loading={false} />);
    expect(container.querySelector('[data-field="prompt"]')).toHaveClass("invalid");
    expect(container.querySelector('[data-field="targets"]')).not.toHaveClass("invalid");
    // the leading-space warning for 'Mary' (the prompt does not end in a space), none for ' John'
    expect(screen.getByText(/most BPE vocabularies want ' Mary', not 'Mary'/)).toBeInTheDocument();
    expect(screen.queryByText(/' {2}John'/)).toBeNull();
    await waitFor(() => expect(screen.getByTestId("prompt-tokens")).toHaveTextContent("Mary"));
  });
});
