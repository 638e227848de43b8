// Calls `tick` now and then every `ms`, until stopped or `tick` returns true (done).

export function poll(tick, ms) {
  let timer = null, stopped = false;
  const run = async () => {
    let done = false;
    try {
      done = await tick();
    } catch (err) {
      done = false;
    }
    if (!stopped && !done) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}
