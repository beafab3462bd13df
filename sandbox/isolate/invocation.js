// Which invocation is running. It decides where console output goes and which invocation a fetch is
// traced under; host I/O (fetch, timers) restores it when it resumes, so concurrent invocations keep
// their own logs even across awaits.

/** 0: top-level code while the function loads. */
export let current = 0;

export function setCurrent(id) {
  current = id;
}
