// node --test reporter used by scripts/test.sh: one tab-separated line per finished test,
//   <kind>\t<file>\t<name>
// kind: pass | fail | skip | todo for a test, "file" for the entry node makes for a whole
// file (a file that loaded but declared no test, or failed to load). Suites (describe) are
// left out: a suite passes even when every test in it was skipped. With this, test.sh can
// tell that each e2e file really ran tests and list the skipped/todo ones by name.
// The run's top-level diagnostics follow as in TAP ("# pass N", "# fail N", "# skipped N",
// "# todo N", …), so one file holds the counts too.
export default async function* filesReporter(source) {
  for await (const ev of source) {
    if (ev.type === "test:diagnostic" && !ev.data.nesting) {
      yield `# ${String(ev.data.message).replace(/\n/g, " ")}\n`;
      continue;
    }
    if (ev.type !== "test:pass" && ev.type !== "test:fail") continue;
    const d = ev.data;
    if (d.details?.type === "suite") continue;
    const file = d.file ?? "?";
    let kind;
    if (d.name === file) kind = "file";
    else if (d.skip !== undefined && d.skip !== false) kind = "skip";
    else if (d.todo !== undefined && d.todo !== false) kind = "todo";
    else kind = ev.type === "test:pass" ? "pass" : "fail";
    const name = String(d.name).replace(/[\t\n]/g, " ");
    yield `${kind}\t${file}\t${name}\n`;
  }
}
