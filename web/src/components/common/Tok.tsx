/** A token with its whitespace made visible (· for a space, ⏎ for a newline). */
export function Tok({ t, className }: { t: string; className?: string }) {
  const parts: React.ReactNode[] = [];
  let buf = "";
  const flush = () => {
    if (buf) parts.push(buf);
    buf = "";
  };
  for (const ch of t) {
    const vis = ch === " " ? "·" : ch === "\n" ? "⏎" : ch === "\t" ? "⇥" : null;
    if (vis === null) buf += ch;
    else {
      flush();
      parts.push(
        <span key={parts.length} className="ws">
          {vis}
        </span>,
      );
    }
  }
  flush();
  return (
    <span className={"tok" + (className ? " " + className : "")} title={JSON.stringify(t)}>
      {t === "" ? <span className="ws">∅</span> : parts}
    </span>
  );
}
