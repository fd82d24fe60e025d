/** A whole-number input that lets you type freely and commits only values in min..max (the URL
 * never holds a half-typed number; the input shows what is typed, marked invalid until it fits). */
import { useEffect, useState } from "react";

interface Props {
  value: number;
  min: number;
  max?: number;
  onCommit: (n: number) => void;
  className?: string;
  testId?: string;
}

export function NumberInput({ value, min, max, onCommit, className, testId }: Props) {
  const [text, setText] = useState(String(value));
  useEffect(() => setText(String(value)), [value]);
  const n = Number(text);
  const ok = text.trim() !== "" && Number.isInteger(n) && n >= min && (max === undefined || n <= max);
  return (
    <input type="number" min={min} max={max} value={text} data-testid={testId}
      className={(className ?? "") + (ok ? "" : " invalid")}
      title={ok ? undefined : `a whole number ${min}..${max ?? "∞"}`}
      onChange={(e) => {
        setText(e.target.value);
        const v = Number(e.target.value);
        if (e.target.value.trim() !== "" && Number.isInteger(v) && v >= min && (max === undefined || v <= max)) onCommit(v);
      }} />
  );
}
