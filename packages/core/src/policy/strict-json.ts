/** A segment of a location in a JSON document: an object key or an array index. */
export type JsonPathSegment = string | number;

/** Formats a location as a reader would type it in JavaScript: `transports.docker["docker.io"][0]`. */
export function formatJsonPath(path: readonly JsonPathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A key that appears twice in one JSON object. */
export interface DuplicateKey {
  key: string;
  /** Where the object holding it is. */
  path: JsonPathSegment[];
}

/**
 * Finds the first key repeated within one object of a document that JSON.parse has already accepted.
 * JSON.parse keeps the last value silently; policy.json must refuse such a file instead, since the
 * two values may say opposite things (containers-policy.json(5), "FORMAT").
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const readString = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  // An explicit stack rather than recursion, so that deep nesting cannot overflow the call stack.
  type Frame = { keys: Set<string> | undefined; path: JsonPathSegment[]; index: number };
  const stack: Frame[] = [];
  const valueStart = (path: JsonPathSegment[]): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') {
      i++;
      stack.push({ keys: new Set(), path, index: 0 });
    } else if (c === '[') {
      i++;
      stack.push({ keys: undefined, path, index: 0 });
    } else if (c === '"') {
      readString();
    } else {
      while (i < text.length && !',]} \t\r\n'.includes(text[i]!)) i++;
    }
  };
  valueStart([]);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    skipSpace();
    const c = text[i];
    if (c === '}' || c === ']') {
      i++;
      stack.pop();
      continue;
    }
    if (c === ',') {
      i++;
      skipSpace();
    }
    if (frame.keys) {
      const key = readString();
      if (frame.keys.has(key)) return { key, path: frame.path };
      frame.keys.add(key);
      skipSpace();
      i++; // the colon
      valueStart([...frame.path, key]);
    } else {
      valueStart([...frame.path, frame.index++]);
    }
  }
  return undefined;
}
