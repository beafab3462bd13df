// Text bounds shared by processes: a message cut to a length without leaving half a character behind
// (a lone surrogate becomes U+FFFD in Kubernetes' and Go's JSON, and looks like corruption).

/** At most `max` UTF-16 units, marked with … when cut, never ending in half a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 2] ?? '') ? max - 2 : max - 1;
  return `${text.slice(0, end)}…`;
}
