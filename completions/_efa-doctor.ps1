
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'efa-doctor' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'efa-doctor'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'efa-doctor' {
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)')
            [CompletionResult]::new('--snapshot', '--snapshot', [CompletionResultType]::ParameterName, 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)')
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated')
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'Do not run these checks: ids or families; repeatable or comma-separated')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 on `fail` only (default), or on `warn` too')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Also analyse these logs (plain or gzip; read as given, not under --root)')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)')
            [CompletionResult]::new('--addr', '--addr', [CompletionResultType]::ParameterName, 'Classify this registered address against the inspected processes'' memory maps (hex address, optional size: 0x7f9d46000000:67108864)')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM''s /metrics, or NIXL''s exporter), or read a saved exposition file')
            [CompletionResult]::new('--rules', '--rules', [CompletionResultType]::ParameterName, 'Add the log rules in DIR/*.toml (same format as checks/rules/)')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image''s content is judged)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('--no-mmap', '--no-mmap', [CompletionResultType]::ParameterName, 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)')
            [CompletionResult]::new('--no-probe', '--no-probe', [CompletionResultType]::ParameterName, 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Run all applicable checks on this node (the default command)')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted')
            [CompletionResult]::new('probe', 'probe', [CompletionResultType]::ParameterValue, 'Live probes of the node''s data path')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Re-render a saved JSON report in another format, or print the JSON Schema of reports')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List every check with its id, title and the failure modes it covers')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Print a check''s documentation: what it checks, why, evidence and remediation')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;check' {
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)')
            [CompletionResult]::new('--snapshot', '--snapshot', [CompletionResultType]::ParameterName, 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)')
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated')
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'Do not run these checks: ids or families; repeatable or comma-separated')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 on `fail` only (default), or on `warn` too')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Also analyse these logs (plain or gzip; read as given, not under --root)')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)')
            [CompletionResult]::new('--addr', '--addr', [CompletionResultType]::ParameterName, 'Classify this registered address against the inspected processes'' memory maps (hex address, optional size: 0x7f9d46000000:67108864)')
            [CompletionResult]::new('--metrics', '--metrics', [CompletionResultType]::ParameterName, 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM''s /metrics, or NIXL''s exporter), or read a saved exposition file')
            [CompletionResult]::new('--rules', '--rules', [CompletionResultType]::ParameterName, 'Add the log rules in DIR/*.toml (same format as checks/rules/)')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image''s content is judged)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('--no-mmap', '--no-mmap', [CompletionResultType]::ParameterName, 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)')
            [CompletionResult]::new('--no-probe', '--no-probe', [CompletionResultType]::ParameterName, 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;logs' {
            [CompletionResult]::new('--rules', '--rules', [CompletionResultType]::ParameterName, 'Add the log rules in DIR/*.toml (same format as checks/rules/)')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 on `fail` only (default), or on `warn` too')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('--no-mmap', '--no-mmap', [CompletionResultType]::ParameterName, 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;snapshot' {
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Capture the node root at DIR instead of this system')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Also take a second EFA counter reading SECS later')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Include these logs in the snapshot (judged again on replay)')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Capture these workload processes (default: discover workers)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Refuse to write more than this much file content (e.g. 128M, 1G)')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'A note stored in the snapshot''s manifest (ticket, node name)')
            [CompletionResult]::new('--no-probe', '--no-probe', [CompletionResultType]::ParameterName, 'Do not run the live memory-registration probe while capturing')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;probe' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('mr', 'mr', [CompletionResultType]::ParameterValue, 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;probe;mr' {
            [CompletionResult]::new('--gpu', '--gpu', [CompletionResultType]::ParameterName, 'GPUs to probe (NVML / PCI order); repeatable or comma-separated; default all')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'libfabric provider to register through (`tcp` exercises the path without EFA)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after SECS (default 30 s plus 10 s per GPU)')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 on `fail` only (default), or on `warn` too')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;probe;pair' {
            [CompletionResult]::new('--connect', '--connect', [CompletionResultType]::ParameterName, 'Connect to the node running `--listen` (HOST, HOST:PORT or [IPv6]:PORT)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Side-channel TCP port (it carries only addresses, counters and results)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'libfabric provider to move messages over (`tcp` exercises the probe without EFA)')
            [CompletionResult]::new('--domain', '--domain', [CompletionResultType]::ParameterName, 'Domain to use (an EFA device `rdmap79s0-rdm`, or an interface for tcp); default: the first that can reach the peer')
            [CompletionResult]::new('--sizes', '--sizes', [CompletionResultType]::ParameterName, 'Message sizes (the connecting node''s list is used); K/M/G suffixes')
            [CompletionResult]::new('--iters', '--iters', [CompletionResultType]::ParameterName, 'Ping-pong round trips per size (fewer for large sizes)')
            [CompletionResult]::new('--stall', '--stall', [CompletionResultType]::ParameterName, 'Longest wait for one completion before the path is declared blocked')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Longest wait for the other node''s side channel')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 on `fail` only (default), or on `warn` too')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Wait for the other node on --bind and --port')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;probe;help' {
            [CompletionResult]::new('mr', 'mr', [CompletionResultType]::ParameterValue, 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;probe;help;mr' {
            break
        }
        'efa-doctor;probe;help;pair' {
            break
        }
        'efa-doctor;probe;help;help' {
            break
        }
        'efa-doctor;report' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the `efa-doctor/1` report')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;report;render' {
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Count the exit code (and JUnit''s failures) as if the run had used this --fail-on')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour in the human format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the JUnit XML report to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Also write the Prometheus text exposition to FILE, beside the --format output')
            [CompletionResult]::new('--prometheus-counters', '--prometheus-counters', [CompletionResultType]::ParameterName, 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;report;schema' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;report;help' {
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the `efa-doctor/1` report')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;report;help;render' {
            break
        }
        'efa-doctor;report;help;schema' {
            break
        }
        'efa-doctor;report;help;help' {
            break
        }
        'efa-doctor;list' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;explain' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'efa-doctor;help' {
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Run all applicable checks on this node (the default command)')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted')
            [CompletionResult]::new('probe', 'probe', [CompletionResultType]::ParameterValue, 'Live probes of the node''s data path')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Re-render a saved JSON report in another format, or print the JSON Schema of reports')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List every check with its id, title and the failure modes it covers')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Print a check''s documentation: what it checks, why, evidence and remediation')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'efa-doctor;help;check' {
            break
        }
        'efa-doctor;help;logs' {
            break
        }
        'efa-doctor;help;snapshot' {
            break
        }
        'efa-doctor;help;probe' {
            [CompletionResult]::new('mr', 'mr', [CompletionResultType]::ParameterValue, 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive')
            break
        }
        'efa-doctor;help;probe;mr' {
            break
        }
        'efa-doctor;help;probe;pair' {
            break
        }
        'efa-doctor;help;report' {
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the `efa-doctor/1` report')
            break
        }
        'efa-doctor;help;report;render' {
            break
        }
        'efa-doctor;help;report;schema' {
            break
        }
        'efa-doctor;help;list' {
            break
        }
        'efa-doctor;help;explain' {
            break
        }
        'efa-doctor;help;completions' {
            break
        }
        'efa-doctor;help;man' {
            break
        }
        'efa-doctor;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
