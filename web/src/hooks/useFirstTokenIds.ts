/** Token ids of the first token of each text (tokenised without BOS): pins multi-token targets too. */
import { useEffect, useState } from "react";
import { post } from "../client/api";

const cache = new Map<string, number | null>();

export function useFirstTokenIds(texts: string[]): number[] {
  const key = JSON.stringify(texts);
  const [ids, setIds] = useState<number[]>([]);
  useEffect(() => {
    let live = true;
    const list = JSON.parse(key) as string[];
    Promise.all(
      list.map(async (t) => {
        if (!cache.has(t)) {
          try {
            const r = await post("/api/tokenize", { text: t, add_bos: false });
            cache.set(t, r.tokens[0]?.id ?? null);
          } catch {
            return null;
          }
        }
        return cache.get(t) ?? null;
      }),
    ).then((r) => live && setIds(r.filter((x): x is number => x !== null)));
    return () => {
      live = false;
    };
  }, [key]);
  return ids;
}
