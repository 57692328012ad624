//! Every kind of diagnostic wf reports, once: its stable code, severity, what it means and the help
//! shown when the place that raises it has nothing more specific to say.

use super::Severity;

macro_rules! kinds {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $sev:ident, $summary:literal, $help:literal; )*) => {
        /// The kinds of diagnostic: one per meaning, each with its own code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( $(#[$doc])* $name, )*
        }

        impl Kind {
            /// Every kind, in declaration order (a test demands a golden case for each).
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            /// The stable code, e.g. `wf::unknown-variable`.
            pub fn code(self) -> &'static str {
                match self { $(Kind::$name => $code,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Kind::$name => Severity::$sev,)* }
            }

            /// What the kind means, in one line (the table of codes in docs/src/language.md).
            pub fn summary(self) -> &'static str {
                match self { $(Kind::$name => $summary,)* }
            }

            /// The help shown when the diagnostic does not set a more specific one.
            pub fn help(self) -> &'static str {
                match self { $(Kind::$name => $help,)* }
            }
        }
    };
}

kinds! {
    /// The text does not follow the grammar.
    Syntax = "wf::syntax", Error, "the text does not follow the grammar",
        "see the language reference in docs/src/language.md";
    /// `total = total + 1`: an assignment to a name already bound.
    Reassignment = "wf::reassignment", Error, "an assignment to a bound name (names are bound once)",
        "a name is bound once; bind the new value to a new name with `let`";
    /// `respond "200"`: a status written as a string.
    QuotedStatus = "wf::quoted-status", Error, "a status written as a string",
        "write the status as a number, without quotes, e.g. `respond 200`";
    /// Expressions or blocks nested beyond the limit.
    NestingTooDeep = "wf::nesting-too-deep", Error, "expressions or blocks nested too deep",
        "split the expression with `let` or flatten the nested blocks";
    /// `"\q"` or `"\u{D800}"`.
    InvalidEscape = "wf::invalid-escape", Error, "an escape a string cannot hold",
        "escapes are `\\n`, `\\t`, `\\r`, `\\\"`, `\\\\`, `\\$` and `\\u{...}`";
    /// A number literal out of range.
    InvalidNumber = "wf::invalid-number", Error, "a number literal out of range",
        "integers must fit in 64 bits; floats must be finite";
    /// The file is not UTF-8.
    InvalidUtf8 = "wf::invalid-utf8", Error, "the file is not valid UTF-8", "save the file as UTF-8 text";
    /// Two workflows with one name.
    DuplicateWorkflow = "wf::duplicate-workflow", Error, "two workflows with one name",
        "workflow names must be unique across all files; rename one";
    /// Two workflows serving one URL path.
    DuplicatePath = "wf::duplicate-path", Error, "two workflows serving one URL path",
        "give one of the workflows another `path` or `key`";
    /// A second `trigger` in a workflow.
    DuplicateTrigger = "wf::duplicate-trigger", Error, "a second trigger in one workflow",
        "merge the settings into the first `trigger`";
    /// A trigger setting given twice.
    DuplicateSetting = "wf::duplicate-setting", Error, "a trigger setting given twice", "keep one of them";
    /// A name bound twice in one workflow.
    DuplicateVariable = "wf::duplicate-variable", Error, "a name bound twice in one workflow",
        "a name is bound once per workflow; pick another name";
    /// A response with two bodies.
    DuplicateBody = "wf::duplicate-body", Error, "a response with two bodies",
        "keep one `json` or `text` line";
    /// A workflow without a trigger.
    MissingTrigger = "wf::missing-trigger", Error, "a workflow without a trigger",
        "add `trigger webhook { }` as the first line of the workflow";
    /// The trigger is not the first item.
    TriggerNotFirst = "wf::trigger-not-first", Error, "the trigger is not first in its workflow",
        "write `trigger webhook { ... }` before `extract` and the statements";
    /// A trigger-level `respond` in a sync workflow.
    TriggerRespondInSync = "wf::trigger-respond-in-sync", Error,
        "an immediate answer in a sync workflow",
        "add `mode async`, or move this `respond` into the workflow's statements";
    /// A `respond` statement in an async workflow.
    RespondInAsync = "wf::respond-in-async", Error, "a `respond` statement in an async workflow",
        "set the immediate answer with `respond` inside `trigger webhook { }`, or use `mode sync`";
    /// A URL path (trigger `path` or test request) that is not one.
    InvalidPath = "wf::invalid-path", Error, "a URL path that is not one",
        "a path starts with `/` and has no spaces, `?` or `#`, e.g. \"/hooks/payment\"";
    /// A `key` that is not URL-safe.
    InvalidKey = "wf::invalid-key", Error, "a trigger key that is not URL-safe",
        "a key uses letters, digits, `-`, `_`, `.` and `~`";
    /// `method "G ET"`: not an HTTP method.
    InvalidMethod = "wf::invalid-method", Error, "a method that is not an HTTP method",
        "write methods in upper case, e.g. method \"GET\" \"POST\"";
    /// `allow ip "10.0.0.300"`.
    InvalidNetwork = "wf::invalid-network", Error, "an `allow ip` entry that is not an address or network",
        "write an address or a CIDR network, e.g. \"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\"";
    /// `cors { origin "a.example" }`.
    InvalidOrigin = "wf::invalid-origin", Error, "a `cors` origin that is not scheme://host[:port]",
        "write the origin as the browser sends it, e.g. \"https://app.example\", or \"*\"";
    /// `auth gitlab ...`.
    UnknownAuth = "wf::unknown-auth", Error, "an `auth` form wf does not have",
        "the forms are basic, bearer, header, github, stripe, slack, shopify, standard_webhooks, twilio and hmac";
    /// An `auth` form with a missing, misplaced or invalid setting.
    InvalidAuth = "wf::invalid-auth", Error, "an `auth` form with a missing, misplaced or invalid setting",
        "see the `auth` forms in docs/src/providers.md";
    /// `request "host"`.
    UnknownRequestField = "wf::unknown-request-field", Error, "a `request` field wf does not have",
        "the fields are method, path, url, ip and raw_body";
    /// A status outside 200–599 (1xx cannot end an exchange).
    InvalidStatus = "wf::invalid-status", Error, "a status outside 200–599",
        "use a status between 200 and 599, e.g. 200, 400 or 422";
    /// `header "Content-Length" = ...` in a `respond`.
    ForbiddenHeader = "wf::forbidden-header", Error,
        "a header the server owns (framing, connection, `x-wf-*`)",
        "remove it: wf sets `content-length`, `transfer-encoding`, `connection`, `keep-alive`, `upgrade`, `te`, `trailer` and `x-wf-*` itself";
    /// A header name that is not one.
    InvalidHeaderName = "wf::invalid-header-name", Error, "a header name that is not one",
        "header names are letters, digits and `-`, e.g. \"X-Request-Id\"";
    /// A constant header value that no answer can carry (a line break, a control character).
    InvalidHeaderValue = "wf::invalid-header-value", Error, "a header value no answer can carry",
        "header values are visible ASCII and spaces; no line breaks or control characters";
    /// A malformed extraction path.
    MalformedPath = "wf::malformed-path", Error, "a malformed extraction path",
        "paths look like `data.status`, `items[0].id` or `[\"key with.dots\"]`";
    /// `${...}` where a plain string is required.
    NotLiteral = "wf::not-literal", Error, "an interpolated string where a plain one is required",
        "write the value literally; escape a dollar sign as `\\$`";
    /// A name bound nowhere.
    UnknownVariable = "wf::unknown-variable", Error, "a name bound nowhere",
        "bind it in an `extract` block or with `let` before using it";
    /// A `let` used outside the block that binds it.
    OutOfScope = "wf::out-of-scope", Error, "a `let` used outside the block that binds it",
        "a `let` is visible after it, in its own block and in the blocks nested in it";
    /// A variable where only constants are allowed (auth, defaults, immediate answers, test requests).
    VariableNotAllowed = "wf::variable-not-allowed", Error,
        "a variable where only constants are allowed",
        "use a literal value or a function such as env(\"NAME\")";
    /// A function wf does not have.
    UnknownFunction = "wf::unknown-function", Error, "a function wf does not have",
        "see the functions in docs/src/language.md";
    /// A function called with the wrong number of arguments.
    WrongArity = "wf::wrong-arity", Error, "a function called with the wrong number of arguments",
        "see the functions in docs/src/language.md";
    /// An `as` type wf does not have.
    UnknownType = "wf::unknown-type", Error, "an `as` type wf does not have",
        "the types are string, number, integer, boolean, object and array";
    /// A regex that does not compile, or is not a literal.
    InvalidRegex = "wf::invalid-regex", Error, "a regex that does not compile",
        "regexes use Rust `regex` syntax; escape a backslash as `\\\\` inside a string";
    /// An operation or function whose operands can only hold types it refuses: it always fails.
    TypeMismatch = "wf::type-mismatch", Error, "an operation that always fails for the types it is given",
        "convert the value first, e.g. with string(x) or number(x), or extract it `as` the type needed";
    /// A `default` whose value contradicts the extraction's `as` type.
    DefaultType = "wf::default-type", Error, "a `default` that contradicts the `as` type",
        "give a default of the extraction's type, or drop the `as`";
    /// A constant (auth setting, immediate answer) whose evaluation fails when it is loaded.
    ConstantFails = "wf::constant-fails", Error, "a constant that fails when it is computed",
        "fix the expression so that it can be computed";
    /// `log secret("KEY")`, or an answer, a `fail` computed from a secret.
    SecretLeak = "wf::secret-leak", Error, "a secret flowing where people can read it",
        "a secret may reach only auth settings, `http` URLs, headers and bodies, `run` env lines and stdin, hmac_sha256(), sha256() and secure_eq(); log or answer a digest instead";
    /// `r.stauts` where `r` holds an `http` or `run` result.
    UnknownField = "wf::unknown-field", Error, "a field an effect's result does not have",
        "an `http` result has status, headers, json and text; a `run` result has code, stdout and stderr";
    /// An `http` or `run` setting that cannot be used (a method, a timeout, a retry count).
    InvalidEffect = "wf::invalid-effect", Error, "an `http` or `run` setting wf cannot use",
        "see `http` and `run` in docs/src/language.md";
    /// `sleep` in a sync workflow (a caller's connection would be held open while it waits).
    WaitInSync = "wf::wait-in-sync", Error, "a statement that waits (`sleep`, `callback`, `wait`) or a trigger setting that makes a run wait (`debounce`, `order by`), in a sync workflow",
        "make the workflow `mode async`: its caller is answered at once and the run waits without holding anything";
    /// `wait` on a value that is not a callback.
    WaitNotCallback = "wf::wait-not-callback", Error, "`wait` on something other than a callback",
        "make one with `let cb = callback`, hand out `cb.url`, then `let reply = wait cb`";
    /// A callback no `wait` waits for.
    UnwaitedCallback = "wf::unwaited-callback", Warning, "a `callback` no `wait` waits for",
        "add `let reply = wait cb` where the run should wait for the call";
    /// A wait longer than wf keeps a run waiting.
    WaitTooLong = "wf::wait-too-long", Error, "a wait longer than 365 days (or not a duration)",
        "wait at most `365d`";
    /// A workflow `path` under `/wf/`, which wf serves itself.
    ReservedPath = "wf::reserved-path", Error, "a workflow path under `/wf/`, which wf keeps for itself",
        "choose another path, e.g. \"/hooks/...\"";
    /// `concurrency 0`.
    InvalidConcurrency = "wf::invalid-concurrency", Error, "a count of runs or iterations out of range (`concurrency` 1 to 100000, `parallel` 1 to 64, `rate` 1 to 10000)",
        "write how many executions may run at once, e.g. `concurrency 4`";
    /// `respond` inside a `for ... parallel N` loop.
    RespondInParallel = "wf::respond-in-parallel", Error, "a `respond` inside a `parallel` loop",
        "collect what the iterations found, and `respond` after the loop";
    /// A `mock` wf cannot use.
    InvalidMock = "wf::invalid-mock", Error, "a `mock` wf cannot use",
        "write mock http POST \"https://api.example/*\" { respond 200 json { ok: true } } or mock run \"deploy.sh\" { code 0 }";
    /// `auth ... env("KEY")`.
    EnvInAuth = "wf::env-in-auth", Warning, "`env()` in an auth setting",
        "use secret(\"NAME\"): it reads the environment too, or a file in $CREDENTIALS_DIRECTORY or --secrets-dir, and the checker keeps it out of logs and answers";
    /// A statement after the execution has ended.
    Unreachable = "wf::unreachable", Warning, "a statement after the execution has ended",
        "remove it, or move it before the statement that ends the execution";
    /// `http GET "${url}"`: the scheme or host of a call comes from request data.
    RequestUrl = "wf::request-url", Warning,
        "an `http` URL whose scheme or host comes from request data (server-side request forgery)",
        "write the scheme and host in the URL's text, e.g. \"https://api.example/orders/${id}\", and put request data in the path or query";
    /// `run "${tool}"`: a program that is not a constant.
    ProgramNotConstant = "wf::program-not-constant", Warning, "a `run` program that is not a constant",
        "name the program with a plain string, e.g. run \"scripts/deploy.sh\" [branch], and pass request data as arguments";
    /// `json file "missing.json"` in a test's request.
    UnreadableFile = "wf::unreadable-file", Error, "a file a test's request reads that cannot be read",
        "write the path relative to the .wf file's folder, e.g. json file \"payloads/push.json\"";
    /// `auth twilio` with `body "a.b"`: Twilio posts flat forms, which hold no nested value.
    UnmetBodyPath = "wf::unmet-body-path", Warning,
        "a `body` path the bodies this workflow's sender posts cannot have",
        "read a field of the form by its name, e.g. body \"From\"";
    /// A string-only value compared with a number: always false.
    StringNumberCompare = "wf::string-number-compare", Warning,
        "a string-only value compared with a number (always false)",
        "add `as number` to the extraction, or compare with a string";
}
