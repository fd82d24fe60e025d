/** Editor warnings about targets and distractors. */

export function leadingSpaceWarning(prompt: string, token: string): string | null {
  if (!token || /^\s/.test(token) || /\s$/.test(prompt)) return null;
  return `no leading space: most BPE vocabularies want ' ${token}', not '${token}'`;
}

export function multiTokenWarning(nTokens: number): string | null {
  return nTokens > 1 ? `${nTokens} tokens: scored as a teacher-forced continuation` : null;
}
