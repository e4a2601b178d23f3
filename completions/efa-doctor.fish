# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_efa_doctor_global_optspecs
    string join \n root= snapshot= only= skip= fail-on= log= pid= addr= metrics= rules= no-mmap no-probe sample= profile= f/format= o/output= color= json= junit= prometheus= prometheus-counters= h/help V/version
end

function __fish_efa_doctor_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_efa_doctor_global_optspecs) -- $cmd 2>/dev/null
    or argparse -s (__fish_efa_doctor_global_optspecs) -- $cmd (commandline -ct)x 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_efa_doctor_using_subcommand
    set -l cmd (__fish_efa_doctor_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l root -d 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l snapshot -d 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l only -d 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated' -r -f -a "kernel\t'every kernel.* check'
host\t'every host.* check'
efa\t'every efa.* check'
pci\t'every pci.* check'
gpu\t'every gpu.* check'
libfabric\t'every libfabric.* check'
probe\t'every probe.* check'
stack\t'every stack.* check'
process\t'every process.* check'
kv\t'every kv.* check'
nixl\t'every nixl.* check'
nccl\t'every nccl.* check'
mr\t'every mr.* check'
transport\t'every transport.* check'
kernel.gpudirect-path\t'A GPUDirect RDMA path exists between the EFA device and GPU memory'
kernel.modules\t'The EFA, verbs and NVIDIA kernel modules are loaded'
host.instance\t'The instance type supports EFA'
host.hugepages\t'The huge page pool libfabric uses is reserved and free'
host.memlock\t'The inspecting process may lock enough memory for RDMA registrations'
host.privileges\t'The EFA verbs devices are present and usable with enough privilege'
host.shm\t'/dev/shm is large enough for NCCL and CUDA IPC'
host.network\t'The instance\'s network placement suits multi-node EFA (IMDS)'
efa.devices\t'Every EFA device of the instance is present, bound and usable'
efa.link\t'EFA link speed and interface state'
efa.traffic\t'EFA traffic comes back (no silent drop)'
efa.errors\t'EFA error counters are not rising'
efa.topology\t'Every GPU has an EFA device near it on PCIe'
pci.link\t'GPU and EFA PCIe links train to the width both ends support'
gpu.inventory\t'NVML sees every GPU, with matching driver versions'
gpu.memory-health\t'GPU memory has no uncorrectable errors or pending row remaps'
gpu.fabric\t'The NVLink fabric is registered on NVSwitch systems'
libfabric.efa-provider\t'The node\'s libfabric has a usable efa provider'
libfabric.gb200-registration\t'libfabric can register CUDA memory on arm64 nodes with NVIDIA GPUs (GB200)'
probe.mr\t'The NIC can register GPU memory through the node\'s libfabric (live probe)'
probe.pair\t'Messages cross the EFA path between two nodes (live two-node probe)'
stack.libfabric-copies\t'One libfabric, the EFA installer\'s, wins the loader\'s search'
stack.aws-ofi-nccl\t'aws-ofi-nccl resolves a libfabric it was built for'
stack.nixl\t'NIXL\'s LIBFABRIC plugin can load, and NIXL\'s default backend is known'
process.nixl-backend\t'Running workers move KV cache with NIXL\'s LIBFABRIC backend on EFA'
process.registered-memory\t'Memory a worker registered with the NIC is GPU memory'
process.libfabric-copies\t'A worker maps exactly one libfabric, the one its plugins were built for'
process.environment\t'A worker\'s EFA-related environment is consistent'
process.memlock\t'A worker may lock enough memory for RDMA registrations'
kv.metrics\t'KV-transfer metrics show bytes moving and no failed transfers'
nixl.backend\t'NIXL\'s KV-transfer backend is LIBFABRIC on EFA'
nixl.backend-init\t'NIXL loaded and initialised every backend it was asked for'
nccl.net-plugin\t'NCCL loaded and initialised its net plugin (aws-ofi-nccl)'
nccl.provider\t'aws-ofi-nccl selected the efa provider'
nccl.network\t'NCCL\'s network is Libfabric (aws-ofi-nccl), not Socket or IB'
nccl.gdrdma\t'NCCL uses GPUDirect RDMA on its Libfabric channels'
mr.registration\t'Memory registrations succeed (and why they failed)'
mr.memlock\t'No EFA memlock failure (EFA error 4112) in the logs'
kv.transfer\t'KV-cache transfers succeed'
transport.tcp-fallback\t'Traffic is not on TCP'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l skip -d 'Do not run these checks: ids or families; repeatable or comma-separated' -r -f -a "kernel\t'every kernel.* check'
host\t'every host.* check'
efa\t'every efa.* check'
pci\t'every pci.* check'
gpu\t'every gpu.* check'
libfabric\t'every libfabric.* check'
probe\t'every probe.* check'
stack\t'every stack.* check'
process\t'every process.* check'
kv\t'every kv.* check'
nixl\t'every nixl.* check'
nccl\t'every nccl.* check'
mr\t'every mr.* check'
transport\t'every transport.* check'
kernel.gpudirect-path\t'A GPUDirect RDMA path exists between the EFA device and GPU memory'
kernel.modules\t'The EFA, verbs and NVIDIA kernel modules are loaded'
host.instance\t'The instance type supports EFA'
host.hugepages\t'The huge page pool libfabric uses is reserved and free'
host.memlock\t'The inspecting process may lock enough memory for RDMA registrations'
host.privileges\t'The EFA verbs devices are present and usable with enough privilege'
host.shm\t'/dev/shm is large enough for NCCL and CUDA IPC'
host.network\t'The instance\'s network placement suits multi-node EFA (IMDS)'
efa.devices\t'Every EFA device of the instance is present, bound and usable'
efa.link\t'EFA link speed and interface state'
efa.traffic\t'EFA traffic comes back (no silent drop)'
efa.errors\t'EFA error counters are not rising'
efa.topology\t'Every GPU has an EFA device near it on PCIe'
pci.link\t'GPU and EFA PCIe links train to the width both ends support'
gpu.inventory\t'NVML sees every GPU, with matching driver versions'
gpu.memory-health\t'GPU memory has no uncorrectable errors or pending row remaps'
gpu.fabric\t'The NVLink fabric is registered on NVSwitch systems'
libfabric.efa-provider\t'The node\'s libfabric has a usable efa provider'
libfabric.gb200-registration\t'libfabric can register CUDA memory on arm64 nodes with NVIDIA GPUs (GB200)'
probe.mr\t'The NIC can register GPU memory through the node\'s libfabric (live probe)'
probe.pair\t'Messages cross the EFA path between two nodes (live two-node probe)'
stack.libfabric-copies\t'One libfabric, the EFA installer\'s, wins the loader\'s search'
stack.aws-ofi-nccl\t'aws-ofi-nccl resolves a libfabric it was built for'
stack.nixl\t'NIXL\'s LIBFABRIC plugin can load, and NIXL\'s default backend is known'
process.nixl-backend\t'Running workers move KV cache with NIXL\'s LIBFABRIC backend on EFA'
process.registered-memory\t'Memory a worker registered with the NIC is GPU memory'
process.libfabric-copies\t'A worker maps exactly one libfabric, the one its plugins were built for'
process.environment\t'A worker\'s EFA-related environment is consistent'
process.memlock\t'A worker may lock enough memory for RDMA registrations'
kv.metrics\t'KV-transfer metrics show bytes moving and no failed transfers'
nixl.backend\t'NIXL\'s KV-transfer backend is LIBFABRIC on EFA'
nixl.backend-init\t'NIXL loaded and initialised every backend it was asked for'
nccl.net-plugin\t'NCCL loaded and initialised its net plugin (aws-ofi-nccl)'
nccl.provider\t'aws-ofi-nccl selected the efa provider'
nccl.network\t'NCCL\'s network is Libfabric (aws-ofi-nccl), not Socket or IB'
nccl.gdrdma\t'NCCL uses GPUDirect RDMA on its Libfabric channels'
mr.registration\t'Memory registrations succeed (and why they failed)'
mr.memlock\t'No EFA memlock failure (EFA error 4112) in the logs'
kv.transfer\t'KV-cache transfers succeed'
transport.tcp-fallback\t'Traffic is not on TCP'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l fail-on -d 'Exit 1 on `fail` only (default), or on `warn` too' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l log -d 'Also analyse these logs (plain or gzip; read as given, not under --root)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l pid -d 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)' -r
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l addr -d 'Classify this registered address against the inspected processes\' memory maps (hex address, optional size: 0x7f9d46000000:67108864)' -r
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l metrics -d 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM\'s /metrics, or NIXL\'s exporter), or read a saved exposition file' -r
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l rules -d 'Add the log rules in DIR/*.toml (same format as checks/rules/)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l sample -d 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)' -r
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l profile -d 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image\'s content is judged)' -r -f -a "node\t'A node that runs (or will run) EFA workloads: every check applies'
bake\t'An AMI or image build instance without EFA interfaces: devices, links, counters, topology and processes are not judged; kernel modules on disk, the NVIDIA driver, libfabric and its efa provider, aws-ofi-nccl, NIXL and hugepage settings are'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l no-mmap -d 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -l no-probe -d 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "check" -d 'Run all applicable checks on this node (the default command)'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "logs" -d 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "snapshot" -d 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "probe" -d 'Live probes of the node\'s data path'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "report" -d 'Re-render a saved JSON report in another format, or print the JSON Schema of reports'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "list" -d 'List every check with its id, title and the failure modes it covers'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "explain" -d 'Print a check\'s documentation: what it checks, why, evidence and remediation'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "completions" -d 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "man" -d 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`'
complete -c efa-doctor -n "__fish_efa_doctor_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l root -d 'Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug node/...`, or an extracted snapshot)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l snapshot -d 'Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native library is needed)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l only -d 'Run only these checks: ids (`host.shm`) or families (`host`); repeatable or comma-separated' -r -f -a "kernel\t'every kernel.* check'
host\t'every host.* check'
efa\t'every efa.* check'
pci\t'every pci.* check'
gpu\t'every gpu.* check'
libfabric\t'every libfabric.* check'
probe\t'every probe.* check'
stack\t'every stack.* check'
process\t'every process.* check'
kv\t'every kv.* check'
nixl\t'every nixl.* check'
nccl\t'every nccl.* check'
mr\t'every mr.* check'
transport\t'every transport.* check'
kernel.gpudirect-path\t'A GPUDirect RDMA path exists between the EFA device and GPU memory'
kernel.modules\t'The EFA, verbs and NVIDIA kernel modules are loaded'
host.instance\t'The instance type supports EFA'
host.hugepages\t'The huge page pool libfabric uses is reserved and free'
host.memlock\t'The inspecting process may lock enough memory for RDMA registrations'
host.privileges\t'The EFA verbs devices are present and usable with enough privilege'
host.shm\t'/dev/shm is large enough for NCCL and CUDA IPC'
host.network\t'The instance\'s network placement suits multi-node EFA (IMDS)'
efa.devices\t'Every EFA device of the instance is present, bound and usable'
efa.link\t'EFA link speed and interface state'
efa.traffic\t'EFA traffic comes back (no silent drop)'
efa.errors\t'EFA error counters are not rising'
efa.topology\t'Every GPU has an EFA device near it on PCIe'
pci.link\t'GPU and EFA PCIe links train to the width both ends support'
gpu.inventory\t'NVML sees every GPU, with matching driver versions'
gpu.memory-health\t'GPU memory has no uncorrectable errors or pending row remaps'
gpu.fabric\t'The NVLink fabric is registered on NVSwitch systems'
libfabric.efa-provider\t'The node\'s libfabric has a usable efa provider'
libfabric.gb200-registration\t'libfabric can register CUDA memory on arm64 nodes with NVIDIA GPUs (GB200)'
probe.mr\t'The NIC can register GPU memory through the node\'s libfabric (live probe)'
probe.pair\t'Messages cross the EFA path between two nodes (live two-node probe)'
stack.libfabric-copies\t'One libfabric, the EFA installer\'s, wins the loader\'s search'
stack.aws-ofi-nccl\t'aws-ofi-nccl resolves a libfabric it was built for'
stack.nixl\t'NIXL\'s LIBFABRIC plugin can load, and NIXL\'s default backend is known'
process.nixl-backend\t'Running workers move KV cache with NIXL\'s LIBFABRIC backend on EFA'
process.registered-memory\t'Memory a worker registered with the NIC is GPU memory'
process.libfabric-copies\t'A worker maps exactly one libfabric, the one its plugins were built for'
process.environment\t'A worker\'s EFA-related environment is consistent'
process.memlock\t'A worker may lock enough memory for RDMA registrations'
kv.metrics\t'KV-transfer metrics show bytes moving and no failed transfers'
nixl.backend\t'NIXL\'s KV-transfer backend is LIBFABRIC on EFA'
nixl.backend-init\t'NIXL loaded and initialised every backend it was asked for'
nccl.net-plugin\t'NCCL loaded and initialised its net plugin (aws-ofi-nccl)'
nccl.provider\t'aws-ofi-nccl selected the efa provider'
nccl.network\t'NCCL\'s network is Libfabric (aws-ofi-nccl), not Socket or IB'
nccl.gdrdma\t'NCCL uses GPUDirect RDMA on its Libfabric channels'
mr.registration\t'Memory registrations succeed (and why they failed)'
mr.memlock\t'No EFA memlock failure (EFA error 4112) in the logs'
kv.transfer\t'KV-cache transfers succeed'
transport.tcp-fallback\t'Traffic is not on TCP'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l skip -d 'Do not run these checks: ids or families; repeatable or comma-separated' -r -f -a "kernel\t'every kernel.* check'
host\t'every host.* check'
efa\t'every efa.* check'
pci\t'every pci.* check'
gpu\t'every gpu.* check'
libfabric\t'every libfabric.* check'
probe\t'every probe.* check'
stack\t'every stack.* check'
process\t'every process.* check'
kv\t'every kv.* check'
nixl\t'every nixl.* check'
nccl\t'every nccl.* check'
mr\t'every mr.* check'
transport\t'every transport.* check'
kernel.gpudirect-path\t'A GPUDirect RDMA path exists between the EFA device and GPU memory'
kernel.modules\t'The EFA, verbs and NVIDIA kernel modules are loaded'
host.instance\t'The instance type supports EFA'
host.hugepages\t'The huge page pool libfabric uses is reserved and free'
host.memlock\t'The inspecting process may lock enough memory for RDMA registrations'
host.privileges\t'The EFA verbs devices are present and usable with enough privilege'
host.shm\t'/dev/shm is large enough for NCCL and CUDA IPC'
host.network\t'The instance\'s network placement suits multi-node EFA (IMDS)'
efa.devices\t'Every EFA device of the instance is present, bound and usable'
efa.link\t'EFA link speed and interface state'
efa.traffic\t'EFA traffic comes back (no silent drop)'
efa.errors\t'EFA error counters are not rising'
efa.topology\t'Every GPU has an EFA device near it on PCIe'
pci.link\t'GPU and EFA PCIe links train to the width both ends support'
gpu.inventory\t'NVML sees every GPU, with matching driver versions'
gpu.memory-health\t'GPU memory has no uncorrectable errors or pending row remaps'
gpu.fabric\t'The NVLink fabric is registered on NVSwitch systems'
libfabric.efa-provider\t'The node\'s libfabric has a usable efa provider'
libfabric.gb200-registration\t'libfabric can register CUDA memory on arm64 nodes with NVIDIA GPUs (GB200)'
probe.mr\t'The NIC can register GPU memory through the node\'s libfabric (live probe)'
probe.pair\t'Messages cross the EFA path between two nodes (live two-node probe)'
stack.libfabric-copies\t'One libfabric, the EFA installer\'s, wins the loader\'s search'
stack.aws-ofi-nccl\t'aws-ofi-nccl resolves a libfabric it was built for'
stack.nixl\t'NIXL\'s LIBFABRIC plugin can load, and NIXL\'s default backend is known'
process.nixl-backend\t'Running workers move KV cache with NIXL\'s LIBFABRIC backend on EFA'
process.registered-memory\t'Memory a worker registered with the NIC is GPU memory'
process.libfabric-copies\t'A worker maps exactly one libfabric, the one its plugins were built for'
process.environment\t'A worker\'s EFA-related environment is consistent'
process.memlock\t'A worker may lock enough memory for RDMA registrations'
kv.metrics\t'KV-transfer metrics show bytes moving and no failed transfers'
nixl.backend\t'NIXL\'s KV-transfer backend is LIBFABRIC on EFA'
nixl.backend-init\t'NIXL loaded and initialised every backend it was asked for'
nccl.net-plugin\t'NCCL loaded and initialised its net plugin (aws-ofi-nccl)'
nccl.provider\t'aws-ofi-nccl selected the efa provider'
nccl.network\t'NCCL\'s network is Libfabric (aws-ofi-nccl), not Socket or IB'
nccl.gdrdma\t'NCCL uses GPUDirect RDMA on its Libfabric channels'
mr.registration\t'Memory registrations succeed (and why they failed)'
mr.memlock\t'No EFA memlock failure (EFA error 4112) in the logs'
kv.transfer\t'KV-cache transfers succeed'
transport.tcp-fallback\t'Traffic is not on TCP'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l fail-on -d 'Exit 1 on `fail` only (default), or on `warn` too' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l log -d 'Also analyse these logs (plain or gzip; read as given, not under --root)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l pid -d 'Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and processes with libnixl, libnccl or libfabric mapped)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l addr -d 'Classify this registered address against the inspected processes\' memory maps (hex address, optional size: 0x7f9d46000000:67108864)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l metrics -d 'Scrape KV-transfer metrics from this Prometheus endpoint (vLLM\'s /metrics, or NIXL\'s exporter), or read a saved exposition file' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l rules -d 'Add the log rules in DIR/*.toml (same format as checks/rules/)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l sample -d 'Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their deltas (silent drops, rising error counters, idle transfers)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l profile -d 'What is being judged: a running node (default), or an AMI build instance launched without EFA interfaces (`bake`: attachment checks skip, the image\'s content is judged)' -r -f -a "node\t'A node that runs (or will run) EFA workloads: every check applies'
bake\t'An AMI or image build instance without EFA interfaces: devices, links, counters, topology and processes are not judged; kernel modules on disk, the NVIDIA driver, libfabric and its efa provider, aws-ofi-nccl, NIXL and hugepage settings are'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l no-mmap -d 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -l no-probe -d 'Do not run the live memory-registration probe (it runs by itself on live nodes with an efa provider and GPUs; see `efa-doctor probe mr`)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand check" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l rules -d 'Add the log rules in DIR/*.toml (same format as checks/rules/)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l fail-on -d 'Exit 1 on `fail` only (default), or on `warn` too' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -l no-mmap -d 'Accepted for compatibility and ignored: logs are always read with read(2), never memory-mapped (a mapped log truncated while it is read aborts the process)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand logs" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l root -d 'Capture the node root at DIR instead of this system' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l sample -d 'Also take a second EFA counter reading SECS later' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l log -d 'Include these logs in the snapshot (judged again on replay)' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l pid -d 'Capture these workload processes (default: discover workers)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -s o -l output -d 'Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l max-size -d 'Refuse to write more than this much file content (e.g. 128M, 1G)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l description -d 'A note stored in the snapshot\'s manifest (ticket, node name)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -l no-probe -d 'Do not run the live memory-registration probe while capturing'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand snapshot" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and not __fish_seen_subcommand_from mr pair help" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and not __fish_seen_subcommand_from mr pair help" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and not __fish_seen_subcommand_from mr pair help" -f -a "mr" -d 'Register real CUDA memory through the node\'s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and not __fish_seen_subcommand_from mr pair help" -f -a "pair" -d 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and not __fish_seen_subcommand_from mr pair help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l gpu -d 'GPUs to probe (NVML / PCI order); repeatable or comma-separated; default all' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l provider -d 'libfabric provider to register through (`tcp` exercises the path without EFA)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l timeout -d 'Give up after SECS (default 30 s plus 10 s per GPU)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l fail-on -d 'Exit 1 on `fail` only (default), or on `warn` too' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from mr" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l connect -d 'Connect to the node running `--listen` (HOST, HOST:PORT or [IPv6]:PORT)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l port -d 'Side-channel TCP port (it carries only addresses, counters and results)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l bind -d 'Address to listen on' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l provider -d 'libfabric provider to move messages over (`tcp` exercises the probe without EFA)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l domain -d 'Domain to use (an EFA device `rdmap79s0-rdm`, or an interface for tcp); default: the first that can reach the peer' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l sizes -d 'Message sizes (the connecting node\'s list is used); K/M/G suffixes' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l iters -d 'Ping-pong round trips per size (fewer for large sizes)' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l stall -d 'Longest wait for one completion before the path is declared blocked' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l wait -d 'Longest wait for the other node\'s side channel' -r
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l fail-on -d 'Exit 1 on `fail` only (default), or on `warn` too' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -l listen -d 'Wait for the other node on --bind and --port'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from pair" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "mr" -d 'Register real CUDA memory through the node\'s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "pair" -d 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and not __fish_seen_subcommand_from render schema help" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and not __fish_seen_subcommand_from render schema help" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and not __fish_seen_subcommand_from render schema help" -f -a "render" -d 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report\'s own, recounted under --fail-on when given)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and not __fish_seen_subcommand_from render schema help" -f -a "schema" -d 'Print the JSON Schema of the `efa-doctor/1` report'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and not __fish_seen_subcommand_from render schema help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l fail-on -d 'Count the exit code (and JUnit\'s failures) as if the run had used this --fail-on' -r -f -a "fail\t'Exit 1 only when a check fails'
warn\t'Exit 1 when a check fails or warns'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -s f -l format -d 'Output format' -r -f -a "human\t'A table for people, with remediation for every fail and warn'
json\t'The versioned JSON report (`efa-doctor/1`)'
junit\t'JUnit XML for CI: fail is a failure, warn and skip are skipped'
prometheus\t'Prometheus text exposition, for node-exporter\'s textfile collector'
npd\t'One short line for node-problem-detector\'s custom-plugin monitor'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -s o -l output -d 'Write the report to FILE instead of standard output (`-`): atomically (a reader never sees half a report), keeping FILE\'s mode (0600 when new); a FIFO or character device named directly is written in place' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l color -d 'When to use colour in the human format' -r -f -a "auto\t'Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`'
always\t''
never\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l json -d 'Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as --output writes, and even when the run fails' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l junit -d 'Also write the JUnit XML report to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l prometheus -d 'Also write the Prometheus text exposition to FILE, beside the --format output' -r -F
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -l prometheus-counters -d 'Which EFA hardware counters the Prometheus output carries: every one, only those above zero, or none (about 45 series per EFA device with `all`)' -r -f -a "all\t'Every counter the driver exposes (about 45 per EFA device on a current driver)'
nonzero\t'Only counters above zero: a healthy node\'s error counters add no series until they count something (a first increase then shows as the series appearing)'
none\t'No counter series'"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from render" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from schema" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from schema" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "render" -d 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report\'s own, recounted under --fail-on when given)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "schema" -d 'Print the JSON Schema of the `efa-doctor/1` report'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand list" -s f -l format -d 'Output format' -r -f -a "human\t''
json\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand list" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand list" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -s f -l format -d 'Output format' -r -f -a "human\t''
json\t''"
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand man" -s h -l help -d 'Print help'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand man" -s V -l version -d 'Print version'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "check" -d 'Run all applicable checks on this node (the default command)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "logs" -d 'Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "snapshot" -d 'Capture what the checks read into a support bundle (.tar.gz), secrets redacted'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "probe" -d 'Live probes of the node\'s data path'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "report" -d 'Re-render a saved JSON report in another format, or print the JSON Schema of reports'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "list" -d 'List every check with its id, title and the failure modes it covers'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "explain" -d 'Print a check\'s documentation: what it checks, why, evidence and remediation'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "completions" -d 'Print the completion script for SHELL (check ids included), e.g. `efa-doctor completions bash > /usr/share/bash-completion/completions/efa-doctor`'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "man" -d 'Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man probe mr`), e.g. `efa-doctor man check | man -l -`'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and not __fish_seen_subcommand_from check logs snapshot probe report list explain completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "mr" -d 'Register real CUDA memory through the node\'s libfabric, as NIXL does, and say why it fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "pair" -d 'Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on the other; ping-pong latency and bandwidth, and why packets do not arrive'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "render" -d 'Render a JSON report saved with `--format json` or `--json FILE` in other formats (exit code: the report\'s own, recounted under --fail-on when given)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "schema" -d 'Print the JSON Schema of the `efa-doctor/1` report'

# Positional arguments, which clap_complete's fish generator leaves out.
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'kernel.gpudirect-path' -d 'A GPUDirect RDMA path exists between the EFA device and GPU memory'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'kernel.modules' -d 'The EFA, verbs and NVIDIA kernel modules are loaded'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.instance' -d 'The instance type supports EFA'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.hugepages' -d 'The huge page pool libfabric uses is reserved and free'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.memlock' -d 'The inspecting process may lock enough memory for RDMA registrations'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.privileges' -d 'The EFA verbs devices are present and usable with enough privilege'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.shm' -d '/dev/shm is large enough for NCCL and CUDA IPC'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'host.network' -d 'The instance\'s network placement suits multi-node EFA (IMDS)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'efa.devices' -d 'Every EFA device of the instance is present, bound and usable'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'efa.link' -d 'EFA link speed and interface state'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'efa.traffic' -d 'EFA traffic comes back (no silent drop)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'efa.errors' -d 'EFA error counters are not rising'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'efa.topology' -d 'Every GPU has an EFA device near it on PCIe'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'pci.link' -d 'GPU and EFA PCIe links train to the width both ends support'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'gpu.inventory' -d 'NVML sees every GPU, with matching driver versions'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'gpu.memory-health' -d 'GPU memory has no uncorrectable errors or pending row remaps'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'gpu.fabric' -d 'The NVLink fabric is registered on NVSwitch systems'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'libfabric.efa-provider' -d 'The node\'s libfabric has a usable efa provider'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'libfabric.gb200-registration' -d 'libfabric can register CUDA memory on arm64 nodes with NVIDIA GPUs (GB200)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'probe.mr' -d 'The NIC can register GPU memory through the node\'s libfabric (live probe)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'probe.pair' -d 'Messages cross the EFA path between two nodes (live two-node probe)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'stack.libfabric-copies' -d 'One libfabric, the EFA installer\'s, wins the loader\'s search'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'stack.aws-ofi-nccl' -d 'aws-ofi-nccl resolves a libfabric it was built for'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'stack.nixl' -d 'NIXL\'s LIBFABRIC plugin can load, and NIXL\'s default backend is known'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'process.nixl-backend' -d 'Running workers move KV cache with NIXL\'s LIBFABRIC backend on EFA'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'process.registered-memory' -d 'Memory a worker registered with the NIC is GPU memory'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'process.libfabric-copies' -d 'A worker maps exactly one libfabric, the one its plugins were built for'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'process.environment' -d 'A worker\'s EFA-related environment is consistent'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'process.memlock' -d 'A worker may lock enough memory for RDMA registrations'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'kv.metrics' -d 'KV-transfer metrics show bytes moving and no failed transfers'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nixl.backend' -d 'NIXL\'s KV-transfer backend is LIBFABRIC on EFA'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nixl.backend-init' -d 'NIXL loaded and initialised every backend it was asked for'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nccl.net-plugin' -d 'NCCL loaded and initialised its net plugin (aws-ofi-nccl)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nccl.provider' -d 'aws-ofi-nccl selected the efa provider'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nccl.network' -d 'NCCL\'s network is Libfabric (aws-ofi-nccl), not Socket or IB'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'nccl.gdrdma' -d 'NCCL uses GPUDirect RDMA on its Libfabric channels'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'mr.registration' -d 'Memory registrations succeed (and why they failed)'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'mr.memlock' -d 'No EFA memlock failure (EFA error 4112) in the logs'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'kv.transfer' -d 'KV-cache transfers succeed'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand explain" -f -a 'transport.tcp-fallback' -d 'Traffic is not on TCP'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -f -a 'bash'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -f -a 'elvish'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -f -a 'fish'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -f -a 'powershell'
complete -c efa-doctor -n "__fish_efa_doctor_using_subcommand completions" -f -a 'zsh'
