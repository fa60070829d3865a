// Test documents: a config.json using every member katana models, and the exact output of
// `runc spec` / `runc spec --rootless` (runc 1.1.5, Debian 12; root user, so the rootless
// mappings are 0 -> 0).
#pragma once

#include <string_view>

namespace katana_test {

inline constexpr std::string_view full_config = R"json({
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6, 4294967295]},
    "args": ["/bin/app", "--flag", "ünïcödé ✓"],
    "env": ["PATH=/usr/bin:/bin", "EMPTY=", "TERM=xterm"],
    "cwd": "/srv",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHECKPOINT_RESTORE"],
      "effective": ["CAP_KILL"],
      "inheritable": ["CAP_CHOWN"],
      "permitted": ["CAP_KILL", "CAP_CHOWN"],
      "ambient": ["CAP_BPF"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "katana-default",
    "oomScoreAdj": -500,
    "scheduler": {
      "policy": "SCHED_DEADLINE", "nice": -3, "priority": 0,
      "flags": ["SCHED_FLAG_RESET_ON_FORK"], "runtime": 10000, "deadline": 20000, "period": 30000
    },
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "0", "final": "0-3,7"}
  },
  "root": {"path": "/run/bundle/rootfs", "readonly": true},
  "hostname": "box",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["KEY=value"], "timeout": 5}],
    "createRuntime": [{"path": "/usr/bin/setup-network"}],
    "createContainer": [{"path": "/usr/bin/inside", "timeout": 1}],
    "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
    "poststart": [{"path": "/usr/bin/notify-start", "timeout": 2147483647}],
    "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}]
  },
  "annotations": {"com.example.key1": "value1", "io.katacontainers.config.hypervisor.default_vcpus": "2", "empty": ""},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4294967296", "fs.mqueue.msg_max": "10"},
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "access": "r"}
      ],
      "memory": {
        "limit": 536870912, "reservation": 268435456, "swap": 536870912, "kernel": -1,
        "kernelTCP": -1, "swappiness": 0, "disableOOMKiller": false, "useHierarchy": true,
        "checkBeforeUpdate": true
      },
      "cpu": {
        "shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000,
        "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 0
      },
      "pids": {"limit": 32771},
      "blockIO": {
        "weight": 10, "leafWeight": 10,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                         {"major": 8, "minor": 16, "weight": 500}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 300}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 18446744073709551615}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 1}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "64KB", "limit": 1000000}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}, {"name": "eth1", "priority": 1000}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1000}},
      "unified": {"io.max": "259:0 rbps=2097152", "memory.high": "max"}
    },
    "cgroupsPath": "/myRuntime/myContainer",
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
      {"type": "user"}, {"type": "cgroup"}, {"type": "time", "path": "/proc/1/ns/time"}
    ],
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
      {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432},
      {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0}
    ],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "listenerPath": "/run/seccomp-agent.socket",
      "listenerMetadata": "metadata",
      "syscalls": [
        {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
    "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
    "intelRdt": {
      "closID": "guaranteed_group", "schemata": "L3:0=ff", "l3CacheSchema": "L3:0=7f0;1=1f",
      "memBwSchema": "MB:0=20;1=70", "enableCMT": true, "enableMBM": true
    },
    "personality": {"domain": "LINUX32", "flags": []},
    "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 500}, "boottime": {"secs": -1}}
  },
  "windows": {"layerFolders": ["C:\\layers"], "credentialSpec": {"deep": [[[{"x": null}]]]}},
  "solaris": {"milestone": "svc:/milestone/container:default"},
  "vm": {"kernel": {"path": "/vmlinuz"}},
  "futureField": {"anything": [1, 2.5, "x", true, null]}
})json";

inline constexpr std::string_view runc_spec = R"json({
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620",
				"gid=5"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "network"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
})json";

inline constexpr std::string_view runc_spec_rootless = R"json({
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"effective": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"permitted": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			],
			"ambient": [
				"CAP_AUDIT_WRITE",
				"CAP_KILL",
				"CAP_NET_BIND_SERVICE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": [
				"nosuid",
				"strictatime",
				"mode=755",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": [
				"nosuid",
				"noexec",
				"newinstance",
				"ptmxmode=0666",
				"mode=0620"
			]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"mode=1777",
				"size=65536k"
			]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": [
				"nosuid",
				"noexec",
				"nodev"
			]
		},
		{
			"destination": "/sys",
			"type": "none",
			"source": "/sys",
			"options": [
				"rbind",
				"nosuid",
				"noexec",
				"nodev",
				"ro"
			]
		},
		{
			"destination": "/sys/fs/cgroup",
			"type": "cgroup",
			"source": "cgroup",
			"options": [
				"nosuid",
				"noexec",
				"nodev",
				"relatime",
				"ro"
			]
		}
	],
	"linux": {
		"uidMappings": [
			{
				"containerID": 0,
				"hostID": 0,
				"size": 1
			}
		],
		"gidMappings": [
			{
				"containerID": 0,
				"hostID": 0,
				"size": 1
			}
		],
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "ipc"
			},
			{
				"type": "uts"
			},
			{
				"type": "mount"
			},
			{
				"type": "user"
			}
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
})json";

}  // namespace katana_test
