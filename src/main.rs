fn main() -> std::process::ExitCode {
    wf::cli::main()
}
