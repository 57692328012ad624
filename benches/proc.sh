# Sourced by the benchmark scripts: what /proc says of a running server.
# cpu PID: the CPU ticks it has used so far, user + system, every thread counted.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# rss PID KEY: a memory figure of /proc/PID/status in KiB (VmRSS now, VmHWM its peak); 0 once gone.
rss() { awk -v k="$2" '$1==k":"{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
