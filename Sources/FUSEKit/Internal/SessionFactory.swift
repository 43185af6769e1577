//
// vineyard-csi: FUSEKit
//

internal import CFUSE

/// Creates libfuse low-level sessions for ``FUSESession`` and ``HandoverSession``.
enum SessionFactory {
    /// `fuse_session_new` with the options' arguments and FUSEKit's operations table; the
    /// returned context is retained once (release it after `fuse_session_destroy`).
    static func make(
        fileSystem: any FileSystem, options: MountOptions
    ) throws(FUSEError) -> (session: OpaquePointer, context: Unmanaged<SessionContext>) {
        let box = Unmanaged.passRetained(SessionContext(fileSystem: fileSystem, options: options))
        var args = cfuse_args_empty()
        for argument in options.arguments where cfuse_args_add(&args, argument) != 0 {
            cfuse_args_free(&args)
            box.release()
            throw FUSEError(code: .sessionCreation, errno: .noMemory, message: "cannot build argument vector")
        }
        var ops = LowLevelOperations.make()
        let created = cfuse_session_new(&args, &ops, box.toOpaque())
        // fuse_session_new copies what it keeps (and frees `args` itself on failure).
        cfuse_args_free(&args)
        guard let session = created else {
            box.release()
            throw FUSEError(
                code: .sessionCreation,
                message: "fuse_session_new rejected options \(options.mountOptionStrings) (see stderr)")
        }
        return (session, box)
    }
}
