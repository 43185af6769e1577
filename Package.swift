// swift-tools-version:6.1
//
// vineyard-csi: a Kubernetes CSI driver that maps vineyard objects to volumes.
//
// Dependencies run one way:
//   C/C++ shims (CGRPCShim)  ->  Swift wrappers (GRPCTransport)
//   ->  domain (CSIProto, SharedMemoryStore, CSIDriver)  ->  executables (vineyard-csi, vctl)
// Only the wrapper modules import C.

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

        .target(
            name: "GRPCTransport",
            dependencies: ["CGRPCShim"],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FUSEKit",
            dependencies: ["CFUSE"],
            swiftSettings: swiftSettings
        ),

        /// Handing /dev/fuse descriptors to the holder process and back (SCM_RIGHTS over a
        /// unix socket). Glibc only, so that the holder stays dependency-free.
        .target(
            name: "FDHandover",
            swiftSettings: swiftSettings
        ),

        // MARK: - Domain

        .target(
            name: "CSIProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["README.md"]
        ),
        .target(
            name: "SharedMemoryStore",
            swiftSettings: swiftSettings
        ),
        /// The file system of a volume: a directory tree whose files are objects in a store.
        .target(
            name: "VolumeFS",
            dependencies: ["FUSEKit", "SharedMemoryStore", "VineyardIPC"],
            swiftSettings: swiftSettings
        ),
        /// vineyard's IPC protocol: the codec (frames, typed requests and replies) and a server
        /// that serves a volume of a store on a Unix socket, so vineyard's own clients work.
        .target(
            name: "VineyardIPC",
            dependencies: ["SharedMemoryStore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CSIDriver",
            dependencies: [
                "VineyardIPC",
                "CSIProto",
                "GRPCTransport",
                "FUSEKit",
                "SharedMemoryStore",
                "VolumeFS",
                "FDHandover",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
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
                "CSIDriver",
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
            dependencies: ["FDHandover"],
            swiftSettings: swiftSettings
        ),

        /// Benchmarks print tables of ratios against a baseline measured in the same run.
        .executableTarget(
            name: "VineyardCSIBench",
            dependencies: [
                "CSIProto",
                "FUSEKit",
                "GRPCTransport",
                "SharedMemoryStore",
                "VolumeFS",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/Benchmarks",
            swiftSettings: swiftSettings
        ),

        // MARK: - Tests

        .testTarget(name: "GRPCTransportTests", dependencies: ["GRPCTransport"], swiftSettings: swiftSettings),
        .testTarget(name: "FUSEKitTests", dependencies: ["FUSEKit"], swiftSettings: swiftSettings),
        .testTarget(name: "VolumeFSTests", dependencies: ["VolumeFS", "FUSEKit", "SharedMemoryStore"], swiftSettings: swiftSettings),
        .testTarget(name: "VineyardIPCTests", dependencies: ["VineyardIPC", "SharedMemoryStore"], swiftSettings: swiftSettings),
        .testTarget(name: "SharedMemoryStoreTests", dependencies: ["SharedMemoryStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "DriverMetricsTests",
            dependencies: ["DriverMetrics", "CSIDriver", "FUSEKit", "GRPCTransport", "SharedMemoryStore", "VineyardIPC"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CSIDriverTests",
            dependencies: ["CSIDriver", "CSIProto", "GRPCTransport", "SharedMemoryStore"],
            swiftSettings: swiftSettings
        ),
        /// Yams parses what `vctl deploy csidriver` renders, so the tests read the manifests with
        /// a YAML parser that vctl itself does not use.
        .testTarget(
            name: "VCtlTests",
            dependencies: ["VCtl", "CSIDriver", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)
