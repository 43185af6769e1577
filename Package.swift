// swift-tools-version:6.1
//
// vineyard-csi: a Kubernetes CSI driver that maps vineyard objects to volumes.
//
// Dependencies run one way:
//   C/C++ shims (CGRPCShim, CFUSE)  ->  Swift wrappers (POSIXCore, GRPCTransport, FUSEKit)
//   ->  domain (CSIModel, CSIProto, VineyardObjects, SharedMemoryStore, VineyardIPC, StoreBackend,
//       VineyardSocket, VolumeFS, CSIDriver)  ->  host (NodeHost)  ->  executables (vineyard-csi, vctl)
// Only the wrapper modules import C; POSIXCore is the one that makes plain system calls.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "vineyard-csi",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vineyard-csi", targets: ["VineyardCSI"]),
        .executable(name: "vctl", targets: ["VCtl"]),
        .executable(name: "vineyard-csi-bench", targets: ["VineyardCSIBench"]),
        .executable(name: "vineyard-csi-fdholder", targets: ["VineyardCSIFDHolder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Metrics: swift-metrics' API, written out by swift-prometheus (which adds swift-atomics only).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: - C/C++ shims

        /// libgrpc++ behind a plain C API: a generic unary server and a blocking unary client.
        /// Linked library by library: SwiftPM's pkg-config walk of grpc++ repeats abseil
        /// thousands of times and overflows the argument list. absl_synchronization is named
        /// because grpc++'s callback-API headers inline absl::Mutex calls into the shim's objects.
        .target(
            name: "CGRPCShim",
            linkerSettings: [
                .linkedLibrary("grpc++"),
                .linkedLibrary("grpc"),
                .linkedLibrary("gpr"),
                .linkedLibrary("absl_synchronization"),
            ]
        ),

        /// libfuse3's low-level API; `shim.h` defines FUSE_USE_VERSION first and wraps the
        /// macros and variadic functions Swift cannot import.
        .systemLibrary(
            name: "CFUSE",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),

        // MARK: - Swift wrappers

        /// The package's one layer over Glibc: the `syscall` helper that owns errno and EINTR,
        /// the typed `Errno`, the mount table, the path hash and the process signal policy.
        .target(
            name: "POSIXCore",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GRPCTransport",
            dependencies: ["CGRPCShim"],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FUSEKit",
            dependencies: ["CFUSE", "POSIXCore"],
            swiftSettings: swiftSettings
        ),

        /// Handing /dev/fuse descriptors to the holder process and back (SCM_RIGHTS over a
        /// unix socket). Glibc and POSIXCore only, so that the holder stays small.
        .target(
            name: "FDHandover",
            dependencies: ["POSIXCore"],
            swiftSettings: swiftSettings
        ),

        // MARK: - Domain

        /// The driver's small value types shared with vctl (names, sizes, cluster references,
        /// backend selection), so that vctl does not link the driver, libfuse or the store.
        .target(
            name: "CSIModel",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CSIProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["README.md"]
        ),
        /// vineyard's object model: identifiers, metadata trees and JSON values, shared by the
        /// embedded store and the vineyard client.
        .target(
            name: "VineyardObjects",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SharedMemoryStore",
            dependencies: ["VineyardObjects", "POSIXCore"],
            swiftSettings: swiftSettings
        ),
        /// Where a volume's objects live: one protocol of object operations (blobs, objects,
        /// names, usage) and its capabilities, implemented by the embedded store and a vineyardd.
        .target(
            name: "StoreBackend",
            dependencies: ["VineyardObjects", "SharedMemoryStore", "VineyardIPC", "POSIXCore"],
            swiftSettings: swiftSettings
        ),
        /// The file system of a volume: a directory tree whose files are objects in a backend,
        /// written once over StoreBackend's protocol for the embedded store and vineyardd alike.
        .target(
            name: "VolumeFS",
            dependencies: ["FUSEKit", "SharedMemoryStore", "StoreBackend"],
            swiftSettings: swiftSettings
        ),
        /// vineyard's IPC protocol: the codec (frames, typed requests and replies), the
        /// connection and server machinery of a Unix socket, and a client of vineyardd. Knows
        /// the object model, not the store.
        .target(
            name: "VineyardIPC",
            dependencies: ["VineyardObjects", "POSIXCore"],
            swiftSettings: swiftSettings
        ),
        /// A volume's `vineyard.sock`: serves vineyard's own clients within the volume's scope.
        .target(
            name: "VineyardSocket",
            dependencies: ["VineyardIPC", "SharedMemoryStore", "StoreBackend", "POSIXCore"],
            swiftSettings: swiftSettings
        ),
        /// The CSI services and their logic: validation, records, recovery. What they act on (the
        /// volume host, the mount table, the stores' trees) sits behind protocols.
        .target(
            name: "CSIDriver",
            dependencies: [
                "CSIModel",
                "POSIXCore",
                "CSIProto",
                "GRPCTransport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// What the node plugin does to the host: mounting, FUSE sessions, each volume's
        /// `vineyard.sock`, the fd holder, and the stores' trees, behind CSIDriver's protocols.
        .target(
            name: "NodeHost",
            dependencies: [
                "CSIDriver",
                "FDHandover",
                "FUSEKit",
                "POSIXCore",
                "SharedMemoryStore",
                "StoreBackend",
                "VineyardSocket",
                "VolumeFS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        /// The node plugin's Prometheus metrics: implements the observers of CSIDriver, FUSEKit and
        /// VineyardIPC, collects store and volume figures at scrape time, serves `GET /metrics`.
        .target(
            name: "DriverMetrics",
            dependencies: [
                "CSIDriver",
                "FUSEKit",
                "GRPCTransport",
                "POSIXCore",
                "SharedMemoryStore",
                "VineyardIPC",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: - Executables

        .executableTarget(
            name: "VineyardCSI",
            dependencies: [
                "CSIDriver",
                "NodeHost",
                "POSIXCore",
                "DriverMetrics",
                "FUSEKit",
                "VineyardIPC",
                "CSIProto",
                "GRPCTransport",
                "SharedMemoryStore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "VCtl",
            dependencies: [
                "CSIModel",
                "POSIXCore",
                "CSIProto",
                "GRPCTransport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Holds the /dev/fuse descriptors of the node plugin's mounts across its restarts.
        .executableTarget(
            name: "VineyardCSIFDHolder",
            dependencies: ["FDHandover", "POSIXCore"],
            swiftSettings: swiftSettings
        ),

        /// Benchmarks print tables of ratios against a baseline measured in the same run.
        .executableTarget(
            name: "VineyardCSIBench",
            dependencies: [
                "CSIProto",
                "FUSEKit",
                "GRPCTransport",
                "POSIXCore",
                "SharedMemoryStore",
                "VolumeFS",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/Benchmarks",
            swiftSettings: swiftSettings
        ),

        // MARK: - Tests

        /// Starts a real vineyardd (from the vineyard wheel in `.venv`) for tests of cluster mode.
        .target(name: "VineyarddTestSupport", path: "Tests/VineyarddTestSupport", swiftSettings: swiftSettings),

        .testTarget(name: "POSIXCoreTests", dependencies: ["POSIXCore"], swiftSettings: swiftSettings),
        .testTarget(name: "GRPCTransportTests", dependencies: ["GRPCTransport"], swiftSettings: swiftSettings),
        .testTarget(name: "FUSEKitTests", dependencies: ["FUSEKit"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VolumeFSTests",
            dependencies: ["VolumeFS", "FUSEKit", "SharedMemoryStore", "StoreBackend", "VineyarddTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VineyardIPCTests",
            dependencies: ["VineyardIPC", "VineyardSocket", "SharedMemoryStore", "StoreBackend", "POSIXCore", "VineyarddTestSupport"],
            swiftSettings: swiftSettings
        ),
        /// The backend contract, asserted on the embedded store and on a real vineyardd.
        .testTarget(
            name: "StoreBackendTests",
            dependencies: ["StoreBackend", "SharedMemoryStore", "POSIXCore", "VineyarddTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VineyardObjectsTests", dependencies: ["VineyardObjects"], swiftSettings: swiftSettings),
        .testTarget(name: "SharedMemoryStoreTests", dependencies: ["SharedMemoryStore", "POSIXCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "DriverMetricsTests",
            dependencies: ["DriverMetrics", "CSIDriver", "FUSEKit", "GRPCTransport", "SharedMemoryStore", "VineyardIPC"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CSIDriverTests",
            dependencies: ["CSIDriver", "NodeHost", "CSIProto", "GRPCTransport", "SharedMemoryStore", "POSIXCore"],
            swiftSettings: swiftSettings
        ),
        /// Real mounts of a real store: needs root and /dev/fuse (skipped without).
        .testTarget(
            name: "NodeHostTests",
            dependencies: [
                "NodeHost", "CSIDriver", "SharedMemoryStore", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VineyardCSITests",
            dependencies: [
                "VineyardCSI", "CSIDriver", "DriverMetrics", "GRPCTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Yams parses what `vctl deploy csidriver` renders, so the tests read the manifests with
        /// a YAML parser that vctl itself does not use.
        .testTarget(
            name: "VCtlTests",
            dependencies: ["VCtl", "CSIModel", "POSIXCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)
