//! The interpreter: runs a compiled workflow over one request's frame of slots. Knows nothing of
//! HTTP transport; it produces an [`Outcome`] that the server (or `wf test`) turns into an answer.

mod effects;

use crate::lang::ast::BinOp;
use crate::lang::ast::Span;
use crate::lang::ir::{Block, Body, Builtin, Expr, Part, Respond, Slot, Statement, Stmt, Workflow};
use crate::request::step::{self, Step, StepError, Steps};
use crate::request::value;
use futures_util::FutureExt as _;
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// An answer ready to be sent.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Set from the body form (`json` / `text`) unless a header line set `content-type`.
    pub content_type: Option<&'static str>,
    pub body: bytes::Bytes,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    /// A `respond` was reached.
    Responded(Answer),
    /// The end was reached without `respond`.
    Completed,
    /// `fail`, or a runtime error: the reason, and the statement where it happened. Both go to
    /// the log only.
    Failed(String, Span),
    /// A step stopped the run without ending it (parked until a retry is due, or taken over by
    /// another process): nothing is answered or recorded as its end.
    Stopped(step::Stop),
    /// A newer request with its `debounce` key came: ended without running.
    Superseded,
}

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Runs the statements of `wf` over a frame whose extracted slots are filled; every effect, and
/// `now()` and `uuid()`, pass through `steps`. Without effects the future is ready at its first
/// poll; with them it waits for each effect without holding a thread.
pub(crate) async fn run(
    wf: &Workflow,
    frame: &mut [Value],
    logs: &mut Vec<String>,
    steps: &mut dyn Steps,
    budget: Budget,
) -> Outcome {
    let cx = Context::new(steps).with_budget(budget);
    // `debounce`: the run waits first, and ends superseded if a newer request came.
    if let Some(d) = &wf.debounce {
        let key = match ev(&d.key, frame, &cx) {
            Ok(k) if k.is_null() => None,
            Ok(k) => Some(value::render_string(&k)),
            Err(why) => return Outcome::Failed(why, wf.span),
        };
        if let Some(key) = key {
            match cx.perform(Step::Debounce { key, wait: d.wait, max: d.max }).await {
                Ok(_) => {}
                Err(StepError::Failed(why)) => return Outcome::Failed(why, wf.span),
                Err(StepError::Stopped(step::Stop::Superseded)) => return Outcome::Superseded,
                Err(StepError::Stopped(stop)) => return Outcome::Stopped(stop),
            }
        }
    }
    // `order by`: the run waits for its turn.
    if let Some(o) = &wf.order {
        match key_of(o, frame) {
            Ok(None) => {}
            Ok(Some(key)) => match cx.perform(Step::Order(key)).await {
                Ok(_) => {}
                Err(StepError::Failed(why)) => return Outcome::Failed(why, wf.span),
                Err(StepError::Stopped(stop)) => return Outcome::Stopped(stop),
            },
            Err(why) => return Outcome::Failed(why, wf.span),
        }
    }
    // `rate`: the run waits for a start the window allows.
    if let Some(r) = &wf.rate {
        let key = match r.key.as_ref().map(|k| key_of(k, frame)) {
            None | Some(Ok(None)) => String::new(),
            Some(Ok(Some(key))) => key,
            Some(Err(why)) => return Outcome::Failed(why, wf.span),
        };
        match cx.perform(Step::Rate { key, n: r.n, window_ms: r.window_ms }).await {
            Ok(_) => {}
            Err(StepError::Failed(why)) => return Outcome::Failed(why, wf.span),
            Err(StepError::Stopped(stop)) => return Outcome::Stopped(stop),
        }
    }
    interpret(&wf.body, frame, logs, &cx).await
}

/// A trigger setting's key (`order by`, `rate ... by`), from a run's frame, as text: `None`
/// when it is `null`.
pub(crate) fn key_of(key: &Expr, frame: &[Value]) -> Result<Option<String>, String> {
    match eval(key, frame) {
        Ok(k) if k.is_null() => Ok(None),
        Ok(k) => Ok(Some(value::render_string(&k))),
        Err(why) => Err(why),
    }
}

/// Most loop iterations (`for` and comprehensions together) one execution may run.
pub(crate) const MAX_ITERATIONS: u32 = 10_000;

/// The bounds of one execution: evaluation steps, and bytes of values it builds (`--max-steps`,
/// `--max-memory`). Exceeding either fails the execution with a reason that says which.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub steps: u64,
    pub bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { steps: 10_000_000, bytes: 64 << 20 }
    }
}

/// What one execution carries besides its frame: where its steps go, how many it has taken, and
/// how many loop iterations it has run. Shared by reference across the awaits of an execution
/// (hence the atomics and the lock; an execution never uses it from two threads at once, so its
/// counts are read and written with plain loads and stores: no locked instruction per step).
pub(crate) struct Context<'s> {
    steps: Mutex<Option<&'s mut dyn Steps>>,
    /// The steps taken here (an iteration of a `parallel` loop counts its own).
    step: AtomicU32,
    /// How the journal numbers the `k`-th step taken here: `k * scale + offset` (see
    /// [`Context::iteration`]).
    scale: i64,
    offset: i64,
    counts: Counts<'s>,
    budget: Budget,
}

/// What the bounds of one execution count, shared by the iterations of its `parallel` loops.
#[derive(Default)]
struct Counted {
    iterations: AtomicU32,
    evaluated: AtomicU64,
    built: AtomicU64,
}

/// An execution's counts, or the ones of the execution an iteration belongs to.
enum Counts<'s> {
    Own(Counted),
    Shared(&'s Counted),
}

impl std::ops::Deref for Counts<'_> {
    type Target = Counted;
    fn deref(&self) -> &Counted {
        match self {
            Counts::Own(c) => c,
            Counts::Shared(c) => c,
        }
    }
}

impl<'s> Context<'s> {
    pub(crate) fn new(steps: &'s mut dyn Steps) -> Self {
        Context {
            steps: Mutex::new(Some(steps)),
            step: AtomicU32::new(0),
            scale: 1,
            offset: 0,
            counts: Counts::Own(Counted::default()),
            budget: Budget::default(),
        }
    }

    /// The context of iteration `i` of `of` of a `parallel` loop that starts after this
    /// context's step `after`: its `k`-th step is numbered as this context's step
    /// `after + (k - 1) * of + i + 1`, so that the iterations' steps interleave (the first
    /// steps of all of them, then the second ones, ...) and each has the same number whenever
    /// the run is resumed, whatever order the iterations ran in.
    fn iteration<'c>(&'c self, steps: &'c mut dyn Steps, after: u32, i: usize, of: usize) -> Context<'c> {
        let (i, of) = (i64::try_from(i).unwrap_or(i64::MAX), i64::try_from(of).unwrap_or(i64::MAX));
        Context {
            steps: Mutex::new(Some(steps)),
            step: AtomicU32::new(0),
            scale: self.scale.saturating_mul(of),
            offset: self
                .scale
                .saturating_mul(i64::from(after).saturating_add(i).saturating_add(1).saturating_sub(of))
                .saturating_add(self.offset),
            counts: Counts::Shared(&self.counts),
            budget: self.budget,
        }
    }

    pub(crate) fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Counts one evaluation step; an error past the budget.
    fn tick(&self) -> Result<(), String> {
        let n = self.counts.evaluated.load(Ordering::Relaxed);
        self.counts.evaluated.store(n + 1, Ordering::Relaxed);
        if n >= self.budget.steps {
            return Err(format!(
                "more than {} evaluation steps in one execution (--max-steps)",
                self.budget.steps
            ));
        }
        Ok(())
    }

    /// How deep a value nests (a scalar: 0); an error past [`value::MAX_DEPTH`]. The walk looks
    /// no deeper than the limit and counts a step per array or object it visits.
    fn nesting(&self, v: &Value) -> Result<usize, String> {
        fn walk(cx: &Context, v: &Value, depth: usize) -> Result<usize, String> {
            let children: Box<dyn Iterator<Item = &Value>> = match v {
                Value::Array(a) => Box::new(a.iter()),
                Value::Object(m) => Box::new(m.values()),
                _ => return Ok(depth),
            };
            if depth >= value::MAX_DEPTH {
                return Err(value::too_deep());
            }
            cx.tick()?;
            let mut deepest = depth + 1;
            for x in children {
                if matches!(x, Value::Array(_) | Value::Object(_)) {
                    deepest = deepest.max(walk(cx, x, depth + 1)?);
                }
            }
            Ok(deepest)
        }
        walk(self, v, 0)
    }

    /// Checks that a value built from `elements` (one level above them) nests within the limit.
    fn nests<'v>(&self, elements: impl Iterator<Item = &'v Value>) -> Result<(), String> {
        for x in elements {
            if matches!(x, Value::Array(_) | Value::Object(_)) && self.nesting(x)? + 1 > value::MAX_DEPTH {
                return Err(value::too_deep());
            }
        }
        Ok(())
    }

    /// Counts `bytes` of values built; an error past the budget.
    fn build(&self, bytes: usize) -> Result<(), String> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let total = self.counts.built.load(Ordering::Relaxed).saturating_add(bytes);
        self.counts.built.store(total, Ordering::Relaxed);
        if total > self.budget.bytes {
            return Err(format!(
                "the values built by one execution passed {} MiB (--max-memory)",
                self.budget.bytes >> 20
            ));
        }
        Ok(())
    }

    /// Bytes of values this execution may still build.
    pub(crate) fn room(&self) -> u64 {
        self.budget.bytes.saturating_sub(self.counts.built.load(Ordering::Relaxed))
    }

    /// A value to keep: a borrowed one is copied, and its size counted.
    fn own(&self, v: Cow<'_, Value>) -> Result<Value, String> {
        match v {
            Cow::Owned(v) => Ok(v),
            Cow::Borrowed(v) => {
                self.build(value::size(v))?;
                Ok(v.clone())
            }
        }
    }

    /// Counts one iteration; an error past [`MAX_ITERATIONS`].
    fn iterate(&self) -> Result<(), String> {
        let next = self.counts.iterations.load(Ordering::Relaxed).saturating_add(1);
        self.counts.iterations.store(next, Ordering::Relaxed);
        if next > MAX_ITERATIONS {
            Err(format!("more than {MAX_ITERATIONS} loop iterations in one execution"))
        } else {
            Ok(())
        }
    }

    /// The journal's number of the next step.
    fn next_step(&self) -> Result<u32, String> {
        let next = self.step.load(Ordering::Relaxed).saturating_add(1);
        self.step.store(next, Ordering::Relaxed);
        i64::from(next)
            .checked_mul(self.scale)
            .and_then(|n| n.checked_add(self.offset))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| "more steps in `parallel` loops than one execution can number".to_string())
    }

    /// Takes a step that is answered at once (`now()`, `uuid()`), inside an expression.
    fn perform_now(&self, step: Step) -> Result<Value, String> {
        let n = self.next_step()?;
        let mut guard = self.steps.lock().map_err(|_| "the execution's steps are unusable".to_string())?;
        let steps = guard.as_mut().ok_or("a step started inside another step")?;
        match steps.perform(n, step).now_or_never() {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("`now()` and `uuid()` must be answered at once".into()),
        }
    }

    /// Takes an effect step and waits for its result.
    async fn perform(&self, step: Step) -> Result<Value, StepError> {
        let n = self.next_step()?;
        let taken = self.steps.lock().ok().and_then(|mut s| s.take());
        let Some(steps) = taken else { return Err("the execution's steps are unusable".to_string().into()) };
        let result = steps.perform(n, step).await;
        if let Ok(mut slot) = self.steps.lock() {
            *slot = Some(steps);
        }
        result
    }
}

/// Evaluates an expression outside any execution (constants, a test's `expect`): `now()` and
/// `uuid()` read the clock and the random source; effects cannot be reached from an expression.
pub(crate) fn eval<'a>(e: &'a Expr, frame: &'a [Value]) -> Result<Value, String> {
    let mut clock = step::Clock;
    let cx = Context::new(&mut clock);
    ev(e, frame, &cx).map(Cow::into_owned)
}

/// The pairs a loop goes over: (index or key, element or value); `null` gives none.
fn entries(v: Value, what: &str) -> Result<Vec<(Value, Value)>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items.into_iter().enumerate().map(|(i, x)| (Value::from(i), x)).collect()),
        Value::Object(map) => Ok(map.into_iter().map(|(k, x)| (Value::String(k), x)).collect()),
        other => Err(format!("{what} goes over an array or an object, got {}", value::type_name(&other))),
    }
}

/// Where the interpreter is: the blocks it is in, innermost last. Nesting is data, not
/// recursion, so one interpreter serves every workflow: its future holds no boxed blocks and is
/// ready at its first poll when nothing waits (see [`run_now`]).
enum Frame<'w> {
    /// The statements of a block, from `next` on.
    Block { stmts: &'w [Statement], next: usize },
    /// A `for`: the entries left, the slots they go to, its body, and its statement's place.
    Loop {
        entries: std::vec::IntoIter<(Value, Value)>,
        key: Option<Slot>,
        value: Slot,
        body: &'w Block,
        span: Span,
    },
}

/// Blocks most workflows nest within, kept in the future itself (deeper ones spill to the heap).
type Frames<'w> = smallvec::SmallVec<[Frame<'w>; 4]>;

/// The next statement to run, leaving blocks that ended and starting a loop's next iteration;
/// `None` at the end of the workflow; an iteration over the budget fails at its `for`.
fn next<'w>(
    at: &mut Frames<'w>,
    frame: &mut [Value],
    cx: &Context<'_>,
) -> Result<Option<&'w Statement>, (String, Span)> {
    loop {
        match at.last_mut() {
            None => return Ok(None),
            Some(Frame::Block { stmts, next }) => {
                if let Some(s) = stmts.get(*next) {
                    *next += 1;
                    return Ok(Some(s));
                }
                at.pop();
            }
            Some(Frame::Loop { entries, key, value, body, span }) => match entries.next() {
                Some((k, v)) => {
                    let body: &'w Block = body;
                    bind(*key, *value, k, v, frame, cx).map_err(|e| (e, *span))?;
                    at.push(Frame::Block { stmts: body, next: 0 });
                }
                None => {
                    at.pop();
                }
            },
        }
    }
}

/// Runs statements from `body` on until one ends the execution: the interpreter.
async fn interpret(body: &Block, frame: &mut [Value], logs: &mut Vec<String>, cx: &Context<'_>) -> Outcome {
    let mut at: Frames<'_> = smallvec::smallvec![Frame::Block { stmts: body, next: 0 }];
    loop {
        let s = match next(&mut at, frame, cx) {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Completed,
            Err((why, span)) => return Outcome::Failed(why, span),
        };
        let done = match &s.stmt {
            Stmt::If(branches, otherwise) => chosen(branches, otherwise, frame, cx).map(|b| {
                at.push(Frame::Block { stmts: b, next: 0 });
                None
            }),
            Stmt::For { key, value, iter, parallel: Some(at_once), body } => {
                match ev(iter, frame, cx).and_then(|v| entries(v.into_owned(), "`for`")) {
                    Err(why) => Err(why),
                    Ok(e) => {
                        let each =
                            Each { key: *key, value: *value, body, at_once: *at_once as usize, span: s.span };
                        parallel(each, e, frame, logs, cx).await
                    }
                }
            }
            Stmt::For { key, value, iter, parallel: None, body } => {
                ev(iter, frame, cx).and_then(|v| entries(v.into_owned(), "`for`")).map(|e| {
                    at.push(Frame::Loop {
                        entries: e.into_iter(),
                        key: *key,
                        value: *value,
                        body,
                        span: s.span,
                    });
                    None
                })
            }
            Stmt::Sleep(e) => match sleep_for(e, frame, cx) {
                Err(why) => Err(why),
                Ok(time) => match cx.perform(Step::Sleep(time)).await {
                    Ok(_) => Ok(None),
                    Err(StepError::Failed(why)) => Err(why),
                    Err(StepError::Stopped(stop)) => Ok(Some(Outcome::Stopped(stop))),
                },
            },
            Stmt::Effect(slot, effect) => match effects::request(effect, frame, cx) {
                Err(why) => Err(why),
                Ok(step) => match cx.perform(step).await {
                    // An effect's result counts toward `--max-memory` like any value built.
                    Ok(result) => match cx.build(value::size(&result)) {
                        Err(why) => Err(why),
                        Ok(()) => {
                            if let Some(x) = slot.and_then(|s| frame.get_mut(s as usize)) {
                                *x = result;
                            }
                            Ok(None)
                        }
                    },
                    Err(StepError::Failed(why)) => Err(why),
                    Err(StepError::Stopped(stop)) => Ok(Some(Outcome::Stopped(stop))),
                },
            },
            _ => plain(s, frame, logs, cx),
        };
        match done {
            Ok(None) => {}
            Ok(Some(outcome)) => return outcome,
            Err(why) => return Outcome::Failed(why, s.span),
        }
    }
}

/// A `for ... parallel N` loop: its names' slots, its body, and how many iterations at once.
struct Each<'w> {
    key: Option<Slot>,
    value: Slot,
    body: &'w Block,
    at_once: usize,
    /// The `for` statement's place: an iteration over the budget fails there.
    span: Span,
}

/// Runs a `parallel` loop's iterations, up to `at_once` of them at a time, each over its own copy
/// of the frame (its `let`s are its own) and with its own steps (see [`Context::iteration`]).
/// The first iteration that fails or stops the run ends the loop with that outcome once the
/// iterations under way have ended; no iteration starts after it. Logs are kept in the order
/// iterations end. Where steps cannot be taken side by side, iterations run one at a time.
async fn parallel(
    each: Each<'_>,
    entries: Vec<(Value, Value)>,
    frame: &[Value],
    logs: &mut Vec<String>,
    cx: &Context<'_>,
) -> Result<Option<Outcome>, String> {
    use futures_util::stream::{FuturesUnordered, StreamExt as _};
    let of = entries.len();
    let after = cx.step.load(Ordering::Relaxed);
    let taken = cx.steps.lock().ok().and_then(|mut s| s.take());
    let Some(steps) = taken else { return Err("the execution's steps are unusable".into()) };
    let each = &each;
    let mut first: Option<Outcome> = None;
    let mut most = 0u32;
    let mut ended = |outcome: Outcome, mut lines: Vec<String>, took: u32| {
        logs.append(&mut lines);
        most = most.max(took);
        // The first failure or stop is the loop's; a later one ends the same run.
        if !matches!(outcome, Outcome::Completed) && first.is_none() {
            first = Some(outcome);
        }
        first.is_some()
    };
    if steps.fork().is_none() {
        for (i, entry) in entries.into_iter().enumerate() {
            let (outcome, lines, took) =
                iteration(each, (i, of, after), entry, frame.to_vec(), &mut *steps, cx).await;
            if ended(outcome, lines, took) {
                break;
            }
        }
    } else {
        let mut pending = entries.into_iter().enumerate();
        let mut under_way = FuturesUnordered::new();
        let mut stopping = false;
        loop {
            while !stopping && under_way.len() < each.at_once {
                let Some((i, entry)) = pending.next() else { break };
                let Some(mut own) = steps.fork() else { break };
                let copy = frame.to_vec();
                under_way.push(async move {
                    let done = iteration(each, (i, of, after), entry, copy, own.as_mut(), cx).await;
                    (done, own)
                });
            }
            let Some(((outcome, lines, took), own)) = under_way.next().await else { break };
            steps.join(own.as_ref());
            stopping = ended(outcome, lines, took);
        }
    }
    if let Ok(mut slot) = cx.steps.lock() {
        *slot = Some(steps);
    }
    let took = u32::try_from(of).ok().and_then(|of| most.checked_mul(of)).and_then(|n| n.checked_add(after));
    cx.step.store(
        took.ok_or("more steps in a `parallel` loop than one execution can number")?,
        Ordering::Relaxed,
    );
    Ok(first)
}

/// One iteration of a `parallel` loop (`at`: its index, the loop's length, and the step the
/// loop started after) over its own frame: its outcome, its logs and how many steps it took.
async fn iteration(
    each: &Each<'_>,
    at: (usize, usize, u32),
    (k, v): (Value, Value),
    mut frame: Vec<Value>,
    steps: &mut dyn Steps,
    cx: &Context<'_>,
) -> (Outcome, Vec<String>, u32) {
    let (i, of, after) = at;
    let cx = cx.iteration(steps, after, i, of);
    let mut logs = Vec::new();
    let outcome = match bind(each.key, each.value, k, v, &mut frame, &cx) {
        Err(why) => Outcome::Failed(why, each.span),
        Ok(()) => Box::pin(interpret(each.body, &mut frame, &mut logs, &cx)).await,
    };
    let took = cx.step.load(Ordering::Relaxed);
    (outcome, logs, took)
}

/// Runs the statements of `wf`, which has no effects, at once: the interpreter's future is
/// ready at its first poll (`now()` and `uuid()` are answered by the clock). The server's path
/// for most workflows; [`run`] is the one for workflows that wait for effects.
pub(crate) fn run_now(wf: &Workflow, frame: &mut [Value], logs: &mut Vec<String>, budget: Budget) -> Outcome {
    let mut clock = step::Clock;
    let cx = Context::new(&mut clock).with_budget(budget);
    interpret(&wf.body, frame, logs, &cx).now_or_never().unwrap_or_else(|| {
        Outcome::Failed("an effect cannot run in an execution that does not wait".into(), Span::default())
    })
}

/// The block an `if` runs: the first branch whose condition holds, else `otherwise`.
fn chosen<'b>(
    branches: &'b [(Expr, Block)],
    otherwise: &'b Block,
    frame: &[Value],
    cx: &Context<'_>,
) -> Result<&'b Block, String> {
    for (cond, body) in branches {
        if value::truthy(&*ev(cond, frame, cx)?) {
            return Ok(body);
        }
    }
    Ok(otherwise)
}

/// Sets a `for`'s variables to one entry; counts the iteration.
fn bind(
    key: Option<crate::lang::ir::Slot>,
    value: crate::lang::ir::Slot,
    k: Value,
    v: Value,
    frame: &mut [Value],
    cx: &Context<'_>,
) -> Result<(), String> {
    cx.iterate()?;
    if let Some(x) = key.and_then(|s| frame.get_mut(s as usize)) {
        *x = k;
    }
    if let Some(x) = frame.get_mut(value as usize) {
        *x = v;
    }
    Ok(())
}

/// How long a `sleep` waits: its seconds, from 0 to 365 days.
fn sleep_for(e: &Expr, frame: &[Value], cx: &Context<'_>) -> Result<std::time::Duration, String> {
    let v = ev(e, frame, cx)?;
    let max = crate::lang::check::MAX_WAIT_MS as f64 / 1000.0;
    match v.as_f64() {
        Some(s) if (0.0..=max).contains(&s) => Ok(std::time::Duration::from_secs_f64(s)),
        _ => {
            let shown: String = v.to_string().chars().take(40).collect();
            Err(format!("`sleep` waits a number of seconds from 0 to {max} (365 days), got {shown}"))
        }
    }
}

/// The statements that neither nest nor wait.
fn plain(
    s: &Statement,
    frame: &mut [Value],
    logs: &mut Vec<String>,
    cx: &Context<'_>,
) -> Result<Option<Outcome>, String> {
    match &s.stmt {
        Stmt::Let(slot, e) => {
            let v = moving(e, frame, cx)?;
            if let Some(x) = frame.get_mut(*slot as usize) {
                *x = v;
            }
            Ok(None)
        }
        Stmt::Respond(r) => Ok(Some(Outcome::Responded(answer(r, frame, cx)?))),
        Stmt::Log(e) => {
            logs.push(value::render_string(&*ev(e, frame, cx)?));
            Ok(None)
        }
        Stmt::Fail(e) => Ok(Some(Outcome::Failed(value::render_string(&*ev(e, frame, cx)?), s.span))),
        Stmt::If(..) | Stmt::For { .. } | Stmt::Effect(..) | Stmt::Sleep(_) => {
            Err("not a plain statement".into())
        }
    }
}

/// Builds an answer whose expressions are constants (a trigger's immediate answer, a mock's).
pub(crate) fn constant_answer(r: &Respond) -> Result<Answer, String> {
    let mut clock = step::Clock;
    answer(r, &[], &Context::new(&mut clock))
}

/// Builds the answer of a `respond`.
pub(crate) fn answer(r: &Respond, frame: &[Value], cx: &Context) -> Result<Answer, String> {
    let mut headers = Vec::with_capacity(r.headers.len());
    for (name, e) in &r.headers {
        let v = ev(e, frame, cx)?;
        let value = match v.as_ref() {
            // A `null` value leaves the header out.
            Value::Null => continue,
            Value::String(s) => HeaderValue::from_str(s),
            other => HeaderValue::from_str(&other.to_string()),
        }
        .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
        headers.push((name.clone(), value));
    }
    let (content_type, body) = match &r.body {
        Body::Empty => (None, Vec::new()),
        Body::Text(e) => {
            let mut s = String::new();
            value::render(&*ev(e, frame, cx)?, &mut s);
            (Some(TEXT), s.into_bytes())
        }
        Body::Json(e) => {
            let mut out = Vec::with_capacity(64);
            write_json(e, frame, &mut out, cx)?;
            (Some(JSON), out)
        }
    };
    let content_type = if r.has_content_type { None } else { content_type };
    Ok(Answer { status: r.status, headers, content_type, body: bytes::Bytes::from(body) })
}

/// Serializes an expression's value straight into `out`, without building object literals.
pub(crate) fn write_json(e: &Expr, frame: &[Value], out: &mut Vec<u8>, cx: &Context) -> Result<(), String> {
    match e {
        Expr::Object(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(|e| e.to_string())?;
                out.push(b':');
                write_json(v, frame, out, cx)?;
            }
            out.push(b'}');
            Ok(())
        }
        Expr::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(v, frame, out, cx)?;
            }
            out.push(b']');
            Ok(())
        }
        other => serde_json::to_writer(&mut *out, ev(other, frame, cx)?.as_ref()).map_err(|e| e.to_string()),
    }
}

type R<'a> = Result<Cow<'a, Value>, String>;

/// The value of a `let`'s expression, the variables it reads for the last time moved out of the
/// frame (whole, or as array elements and object members) instead of copied.
fn moving(e: &Expr, frame: &mut [Value], cx: &Context) -> Result<Value, String> {
    match e {
        Expr::Take(s) => {
            cx.tick()?;
            Ok(frame.get_mut(*s as usize).map(std::mem::take).unwrap_or(Value::Null))
        }
        Expr::Array(items) if items.iter().any(takes) => {
            cx.tick()?;
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(moving(x, frame, cx)?);
            }
            cx.nests(out.iter())?;
            Ok(Value::Array(out))
        }
        Expr::Object(entries) if entries.iter().any(|(_, x)| takes(x)) => {
            cx.tick()?;
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, x) in entries {
                map.insert(k.clone(), moving(x, frame, cx)?);
            }
            cx.nests(map.values())?;
            Ok(Value::Object(map))
        }
        other => cx.own(ev(other, frame, cx)?),
    }
}

/// Whether a `let`'s expression moves a variable (see [`moving`]).
fn takes(e: &Expr) -> bool {
    match e {
        Expr::Take(_) => true,
        Expr::Array(items) => items.iter().any(takes),
        Expr::Object(entries) => entries.iter().any(|(_, x)| takes(x)),
        _ => false,
    }
}

fn owned<'a>(v: Value) -> R<'a> {
    Ok(Cow::Owned(v))
}

/// Evaluates an expression; values already in the frame or the program are borrowed, not copied.
pub(crate) fn ev<'a>(e: &'a Expr, frame: &'a [Value], cx: &Context) -> R<'a> {
    cx.tick()?;
    match e {
        Expr::Const(v) => Ok(Cow::Borrowed(v)),
        Expr::Slot(s) | Expr::Take(s) => {
            Ok(frame.get(*s as usize).map_or(Cow::Owned(Value::Null), Cow::Borrowed))
        }
        Expr::Template(parts) => {
            let mut s = String::new();
            for p in parts {
                match p {
                    Part::Lit(t) => s.push_str(t),
                    Part::Expr(e) => value::render(&*ev(e, frame, cx)?, &mut s),
                }
                if s.len() > value::MAX_STRING {
                    return Err(value::too_long());
                }
            }
            cx.build(s.len())?;
            owned(Value::String(s))
        }
        Expr::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(cx.own(ev(x, frame, cx)?)?);
            }
            cx.nests(out.iter())?;
            owned(Value::Array(out))
        }
        Expr::Object(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, x) in entries {
                map.insert(k.clone(), cx.own(ev(x, frame, cx)?)?);
            }
            cx.nests(map.values())?;
            owned(Value::Object(map))
        }
        Expr::Field(base, name) => Ok(match ev(base, frame, cx)? {
            Cow::Borrowed(Value::Object(m)) => m.get(name).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
            Cow::Owned(Value::Object(mut m)) => Cow::Owned(m.swap_remove(name).unwrap_or(Value::Null)),
            _ => Cow::Owned(Value::Null),
        }),
        Expr::Index(base, idx) => {
            let i = ev(idx, frame, cx)?;
            let b = ev(base, frame, cx)?;
            Ok(match b {
                Cow::Borrowed(v) => index(v, &i).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
                Cow::Owned(v) => Cow::Owned(index(&v, &i).cloned().unwrap_or(Value::Null)),
            })
        }
        Expr::Not(x) => owned(Value::Bool(!value::truthy(&*ev(x, frame, cx)?))),
        Expr::Neg(x) => owned(value::neg(&*ev(x, frame, cx)?)?),
        Expr::Binary(op, l, r) => binary(*op, l, r, frame, cx),
        Expr::Call(b, args) => call(*b, args, frame, cx),
        Expr::Matches(s, re) => match ev(s, frame, cx)?.as_ref() {
            Value::String(s) => owned(Value::Bool(re.is_match(s))),
            Value::Null => owned(Value::Bool(false)),
            other => Err(format!("matches needs a string, got {}", value::type_name(other))),
        },
        Expr::Comprehension { slot, iter, elem, cond } => {
            let items = ev(iter, frame, cx)?.into_owned();
            // The element is evaluated with the name bound: over a copy of the frame, since the
            // expression evaluator only reads it.
            let mut local = frame.to_vec();
            let mut out = Vec::new();
            for (_, v) in entries(items, "a comprehension")? {
                cx.iterate()?;
                if let Some(x) = local.get_mut(*slot as usize) {
                    *x = v;
                }
                if let Some(c) = cond {
                    if !value::truthy(&*ev(c, &local, cx)?) {
                        continue;
                    }
                }
                out.push(cx.own(ev(elem, &local, cx)?)?);
            }
            cx.nests(out.iter())?;
            owned(Value::Array(out))
        }
        Expr::Env(name) => Err(format!("environment variable `{name}` is not set")),
        Expr::Secret(name) => Err(format!("secret `{name}` is not set")),
    }
}

fn index<'v>(v: &'v Value, i: &Value) -> Option<&'v Value> {
    match (v, i) {
        (Value::Array(a), Value::Number(n)) => a.get(usize::try_from(n.as_u64()?).ok()?),
        (Value::Object(m), Value::String(k)) => m.get(k),
        _ => None,
    }
}

fn binary<'a>(op: BinOp, l: &'a Expr, r: &'a Expr, frame: &'a [Value], cx: &Context) -> R<'a> {
    match op {
        BinOp::Coalesce => {
            let a = ev(l, frame, cx)?;
            if a.is_null() {
                ev(r, frame, cx)
            } else {
                Ok(a)
            }
        }
        BinOp::Or => {
            let a = ev(l, frame, cx)?;
            if value::truthy(&a) {
                Ok(a)
            } else {
                ev(r, frame, cx)
            }
        }
        BinOp::And => {
            let a = ev(l, frame, cx)?;
            if !value::truthy(&a) {
                Ok(a)
            } else {
                ev(r, frame, cx)
            }
        }
        _ => {
            let a = ev(l, frame, cx)?;
            let b = ev(r, frame, cx)?;
            let (a, b) = (a.as_ref(), b.as_ref());
            owned(match op {
                BinOp::Eq => Value::Bool(value::deep_eq(a, b)),
                BinOp::Ne => Value::Bool(!value::deep_eq(a, b)),
                BinOp::Lt => Value::Bool(value::compare(a, b)?.is_lt()),
                BinOp::Le => Value::Bool(value::compare(a, b)?.is_le()),
                BinOp::Gt => Value::Bool(value::compare(a, b)?.is_gt()),
                BinOp::Ge => Value::Bool(value::compare(a, b)?.is_ge()),
                BinOp::In => Value::Bool(value::contains(b, a)?),
                BinOp::Add => {
                    let sum = value::add(a, b)?;
                    if let Value::String(joined) = &sum {
                        cx.build(joined.len())?;
                    }
                    sum
                }
                _ => value::arith(op, a, b)?,
            })
        }
    }
}

fn string_arg<'v>(name: &str, v: &'v Value) -> Result<&'v str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("{name} needs a string, got {}", value::type_name(other))),
    }
}

fn call<'a>(b: Builtin, args: &'a [Expr], frame: &'a [Value], cx: &Context) -> R<'a> {
    let arg = |i: usize| -> R<'a> {
        match args.get(i) {
            Some(e) => ev(e, frame, cx),
            None => Err("missing argument".to_string()),
        }
    };
    owned(match b {
        Builtin::Split
        | Builtin::Join
        | Builtin::Replace
        | Builtin::Slice
        | Builtin::Keys
        | Builtin::Values
        | Builtin::Sum
        | Builtin::Min
        | Builtin::Max
        | Builtin::Any
        | Builtin::All
        | Builtin::JsonEncode
        | Builtin::JsonDecode
        | Builtin::Base64Encode
        | Builtin::Base64Decode
        | Builtin::UrlEncode
        | Builtin::Sha256
        | Builtin::HmacSha256
        | Builtin::UnixTime
        | Builtin::SecureEq => {
            let values = args.iter().map(|e| ev(e, frame, cx)).collect::<Result<Vec<_>, String>>()?;
            let refs: Vec<&Value> = values.iter().map(|v| v.as_ref()).collect();
            let built = crate::request::functions::apply(b, &refs)?;
            cx.build(value::size(&built))?;
            built
        }
        Builtin::Len => match arg(0)?.as_ref() {
            Value::String(s) => Value::from(s.chars().count()),
            Value::Array(a) => Value::from(a.len()),
            Value::Object(m) => Value::from(m.len()),
            other => {
                return Err(format!("len needs a string, array or object, got {}", value::type_name(other)))
            }
        },
        Builtin::Lower => Value::String(string_arg("lower", &*arg(0)?)?.to_lowercase()),
        Builtin::Upper => Value::String(string_arg("upper", &*arg(0)?)?.to_uppercase()),
        Builtin::Trim => Value::String(string_arg("trim", &*arg(0)?)?.trim().to_string()),
        Builtin::Contains => Value::Bool(value::contains(&*arg(0)?, &*arg(1)?)?),
        Builtin::StartsWith => {
            let (s, p) = (arg(0)?, arg(1)?);
            Value::Bool(string_arg("starts_with", &s)?.starts_with(string_arg("starts_with", &p)?))
        }
        Builtin::EndsWith => {
            let (s, p) = (arg(0)?, arg(1)?);
            Value::Bool(string_arg("ends_with", &s)?.ends_with(string_arg("ends_with", &p)?))
        }
        Builtin::Number => {
            let v = arg(0)?;
            value::to_number(&v).ok_or_else(|| format!("number() cannot convert {}", v.as_ref()))?
        }
        Builtin::String => Value::String(value::render_string(&*arg(0)?)),
        Builtin::Exists => Value::Bool(!arg(0)?.is_null()),
        Builtin::Now => cx.perform_now(Step::Now)?,
        Builtin::Uuid => cx.perform_now(Step::Uuid)?,
        Builtin::XmlEscape => Value::String(value::xml_escape(string_arg("xml_escape", &*arg(0)?)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::loader::load_str;
    use serde_json::json;

    fn run_src(src: &str, frame_init: &[(&str, Value)]) -> (Outcome, Vec<String>) {
        let loaded = load_str("t.wf", src);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let wf = &loaded.program.workflows[0];
        let mut frame = vec![Value::Null; wf.slots];
        for (name, v) in frame_init {
            let x = wf.extracts.iter().find(|x| x.name == *name).expect("extract");
            frame[x.slot as usize] = v.clone();
        }
        let mut logs = Vec::new();
        let outcome = run(wf, &mut frame, &mut logs, &mut step::Clock, Budget::default())
            .now_or_never()
            .expect("no effects");
        (outcome, logs)
    }

    fn body(o: &Outcome) -> String {
        match o {
            Outcome::Responded(a) => String::from_utf8_lossy(&a.body).into_owned(),
            other => format!("{other:?}"),
        }
    }

    const WF: &str = r#"workflow w {
        trigger webhook { }
        extract { s = body "s"  n = body "n" as number }
        let cents = n * 100
        if s == "paid" && n > 0 {
            log "paid ${cents}"
            respond 200 { header "X-A" = s json { ok: true, cents: cents, list: [n, s] } }
        } else if s == "pending" { respond 202 text "wait ${n}" }
        else if s == "boom" { let x = s < 1 }
        else if s == "fail" { fail "nope: ${s}" }
    }"#;

    #[test]
    fn branches_respond_log_and_fail() {
        let (o, logs) = run_src(WF, &[("s", json!("paid")), ("n", json!(12.5))]);
        assert_eq!(body(&o), r#"{"ok":true,"cents":1250.0,"list":[12.5,"paid"]}"#);
        assert_eq!(logs, vec!["paid 1250.0"]);
        let (o, _) = run_src(WF, &[("s", json!("paid")), ("n", json!(3))]);
        assert_eq!(body(&o), r#"{"ok":true,"cents":300,"list":[3,"paid"]}"#);
        let (o, _) = run_src(WF, &[("s", json!("pending")), ("n", json!(1))]);
        assert_eq!(body(&o), "wait 1");
        let (o, _) = run_src(WF, &[("s", json!("boom")), ("n", json!(1))]);
        assert!(matches!(o, Outcome::Failed(r, _) if r.contains("cannot compare string with number")));
        let (o, _) = run_src(WF, &[("s", json!("fail")), ("n", json!(1))]);
        assert!(matches!(o, Outcome::Failed(r, _) if r == "nope: fail"));
        let (o, _) = run_src(WF, &[("s", json!("other")), ("n", json!(1))]);
        assert!(matches!(o, Outcome::Completed));
    }

    #[test]
    fn loops_and_comprehensions_are_bounded() {
        let src = r#"workflow w { trigger webhook { } extract { n = body "n" as array }
            let squares = [x * x for x in n if x > 1]
            for i, x in n { log "${i}=${x}" }
            respond 200 json { squares: squares, none: [y for y in null], keys: [k for k in {a: 1, b: 2}] } }"#;
        let (o, logs) = run_src(src, &[("n", json!([1, 2, 3]))]);
        assert_eq!(body(&o), r#"{"squares":[4,9],"none":[],"keys":[1,2]}"#);
        assert_eq!(logs, vec!["0=1", "1=2", "2=3"]);
        let many: Vec<Value> = (0..10_001).map(Value::from).collect();
        let (o, _) = run_src(src, &[("n", Value::Array(many))]);
        assert!(
            matches!(&o, Outcome::Failed(r, _) if r.contains("more than 10000 loop iterations")),
            "{o:?}"
        );
        let (o, _) = run_src(src, &[("n", json!("text"))]);
        assert!(matches!(o, Outcome::Failed(..)));
    }

    #[test]
    fn every_function_example_is_true() {
        let examples: Vec<&str> = crate::lang::builtins::FUNCTIONS
            .iter()
            .filter(|f| !matches!(f.name, "secret" | "env"))
            .map(|f| f.example)
            .collect();
        let src =
            format!("workflow w {{ trigger webhook {{ }} respond 200 json [{}] }}", examples.join(", "));
        let (o, _) = run_src(&src, &[]);
        let Outcome::Responded(a) = o else { panic!("{o:?}") };
        let results: Vec<Value> = serde_json::from_slice(&a.body).unwrap();
        for (example, result) in examples.iter().zip(&results) {
            assert_eq!(result, &Value::Bool(true), "{example}");
        }
        assert_eq!(results.len(), examples.len());
    }

    #[test]
    fn expressions_and_builtins() {
        let src = r#"workflow w { trigger webhook { } extract { v = body "v" }
            respond 200 json {
              a: v.missing.deeper ?? "dflt", b: len("héllo"), c: upper(trim("  x ")), d: "ell" in "hello",
              e: contains([1, 2], 2), f: starts_with("abc", "ab"), g: matches("abc", "^a.c$"), h: number("42") + 1,
              i: string({k: [1]}), j: exists(null), k: v.list[1], l: 7 / 2, m: -v.n, n: !false || false,
              o: "x" in {x: 1}, p: null ?? 0
            } }"#;
        let (o, _) = run_src(src, &[("v", json!({"list": [1, 2], "n": 4}))]);
        assert_eq!(
            body(&o),
            r#"{"a":"dflt","b":5,"c":"X","d":true,"e":true,"f":true,"g":true,"h":43,"i":"{\"k\":[1]}","j":false,"k":2,"l":3.5,"m":-4,"n":true,"o":true,"p":0}"#
        );
    }
}
