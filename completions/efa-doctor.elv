
use builtin;
use str;

set edit:completion:arg-completer[efa-doctor] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'efa-doctor'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'efa-doctor'= {
            cand --root 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)'
            cand --snapshot 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)'
            cand --only 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated'
            cand --skip 'Do not run these checks: ids or families; repeatable or comma-separated'
            cand --fail-on 'Exit 1 on `fail` only (default), or on `warn` too'
            cand --log 'Also analyse these logs (plain or gzip; read as given, not under --root)'
            cand --pid 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)'
            cand --addr 'Classify this registered address against the inspected processes'' memory maps (hex address, optional size: 0x7f9d46000000:67108864)'
            cand --metrics 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM''s /metrics, or NIXL''s exporter), or read a saved exposition file'
            cand --rules 'Add the log rules in DIR/*.toml (same format as checks/rules/)'
            cand --sample 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)'
            cand --profile 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image''s content is judged)'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand --no-mmap 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
            cand --no-probe 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand check 'Run all applicable checks on this node (the default command)'
            cand logs 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)'
            cand snapshot 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted'
            cand probe 'Live probes of the node''s data path'
            cand report 'Re-render a saved JSON report in another format, or print the JSON Schema of reports'
            cand list 'List every check with its id, title and the failure modes it covers'
            cand explain 'Print a check''s documentation: what it checks, why, evidence and remediation'
            cand completions 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`'
            cand man 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;check'= {
            cand --root 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)'
            cand --snapshot 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)'
            cand --only 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated'
            cand --skip 'Do not run these checks: ids or families; repeatable or comma-separated'
            cand --fail-on 'Exit 1 on `fail` only (default), or on `warn` too'
            cand --log 'Also analyse these logs (plain or gzip; read as given, not under --root)'
            cand --pid 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)'
            cand --addr 'Classify this registered address against the inspected processes'' memory maps (hex address, optional size: 0x7f9d46000000:67108864)'
            cand --metrics 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM''s /metrics, or NIXL''s exporter), or read a saved exposition file'
            cand --rules 'Add the log rules in DIR/*.toml (same format as checks/rules/)'
            cand --sample 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)'
            cand --profile 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image''s content is judged)'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand --no-mmap 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
            cand --no-probe 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;logs'= {
            cand --rules 'Add the log rules in DIR/*.toml (same format as checks/rules/)'
            cand --fail-on 'Exit 1 on `fail` only (default), or on `warn` too'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand --no-mmap 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;snapshot'= {
            cand --root 'Capture the node root at DIR instead of this system'
            cand --sample 'Also take a second EFA counter reading SECS later'
            cand --log 'Include these logs in the snapshot (judged again on replay)'
            cand --pid 'Capture these workload processes (default: discover workers)'
            cand -o 'Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes'
            cand --output 'Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes'
            cand --max-size 'Refuse to write more than this much file content (e.g. 128M, 1G)'
            cand --description 'A note stored in the snapshot''s manifest (ticket, node name)'
            cand --no-probe 'Do not run the live memory-registration probe while capturing'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;probe'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand mr 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
            cand pair 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;probe;mr'= {
            cand --gpu 'GPUs to probe (NVML / PCI order); repeatable or comma-separated; default all'
            cand --provider 'libfabric provider to register through (`tcp` exercises the path without EFA)'
            cand --timeout 'Give up after SECS (default 30 s plus 10 s per GPU)'
            cand --fail-on 'Exit 1 on `fail` only (default), or on `warn` too'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;probe;pair'= {
            cand --connect 'Connect to the node running `--listen` (HOST, HOST:PORT or [IPv6]:PORT)'
            cand --port 'Side-channel TCP port (it carries only addresses, counters and results)'
            cand --bind 'Address to listen on'
            cand --provider 'libfabric provider to move messages over (`tcp` exercises the probe without EFA)'
            cand --domain 'Domain to use (an EFA device `rdmap79s0-rdm`, or an interface for tcp); default: the first that can reach the peer'
            cand --sizes 'Message sizes (the connecting node''s list is used); K/M/G suffixes'
            cand --iters 'Ping-pong round trips per size (fewer for large sizes)'
            cand --stall 'Longest wait for one completion before the path is declared blocked'
            cand --wait 'Longest wait for the other node''s side channel'
            cand --fail-on 'Exit 1 on `fail` only (default), or on `warn` too'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand --listen 'Wait for the other node on --bind and --port'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;probe;help'= {
            cand mr 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
            cand pair 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;probe;help;mr'= {
        }
        &'efa-doctor;probe;help;pair'= {
        }
        &'efa-doctor;probe;help;help'= {
        }
        &'efa-doctor;report'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand render 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)'
            cand schema 'Print the JSON Schema of the `efa-doctor/1` report'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;report;render'= {
            cand --fail-on 'Count the exit code (and JUnit''s failures) as if the run had used this --fail-on'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --output 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE''s mode (0600 when new); a FIFO or character device named directly is written in place'
            cand --color 'When to use colour in the human format'
            cand --json 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails'
            cand --junit 'Also write the JUnit XML report to FILE, beside the --format output'
            cand --prometheus 'Also write the Prometheus text exposition to FILE, beside the --format output'
            cand --prometheus-counters 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;report;schema'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;report;help'= {
            cand render 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)'
            cand schema 'Print the JSON Schema of the `efa-doctor/1` report'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;report;help;render'= {
        }
        &'efa-doctor;report;help;schema'= {
        }
        &'efa-doctor;report;help;help'= {
        }
        &'efa-doctor;list'= {
            cand -f 'Output format'
            cand --format 'Output format'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;explain'= {
            cand -f 'Output format'
            cand --format 'Output format'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'efa-doctor;help'= {
            cand check 'Run all applicable checks on this node (the default command)'
            cand logs 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)'
            cand snapshot 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted'
            cand probe 'Live probes of the node''s data path'
            cand report 'Re-render a saved JSON report in another format, or print the JSON Schema of reports'
            cand list 'List every check with its id, title and the failure modes it covers'
            cand explain 'Print a check''s documentation: what it checks, why, evidence and remediation'
            cand completions 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`'
            cand man 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'efa-doctor;help;check'= {
        }
        &'efa-doctor;help;logs'= {
        }
        &'efa-doctor;help;snapshot'= {
        }
        &'efa-doctor;help;probe'= {
            cand mr 'Register real CUDA memory through the node''s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
            cand pair 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
        }
        &'efa-doctor;help;probe;mr'= {
        }
        &'efa-doctor;help;probe;pair'= {
        }
        &'efa-doctor;help;report'= {
            cand render 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report''s own, recounted under --fail-on when given)'
            cand schema 'Print the JSON Schema of the `efa-doctor/1` report'
        }
        &'efa-doctor;help;report;render'= {
        }
        &'efa-doctor;help;report;schema'= {
        }
        &'efa-doctor;help;list'= {
        }
        &'efa-doctor;help;explain'= {
        }
        &'efa-doctor;help;completions'= {
        }
        &'efa-doctor;help;man'= {
        }
        &'efa-doctor;help;help'= {
        }
    ]
    $completions[$command]
}
