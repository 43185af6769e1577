//
// vineyard-csi: VolumeFS
//
// InodeTable.swift: inode numbers of the paths the kernel knows.

import FUSEKit

/// The inodes of one mount: number → node, and (directory, name) → node.
///
/// Inode numbers come from a counter and are never reused within a session, so the
/// generation number can stay constant. A node lives while the kernel holds a lookup count,
/// a handle is open, or it has attached children in the table; after that a later lookup of
/// the same path gets a new number. Paths are not stored: they are rebuilt by walking the
/// parents, so renaming a directory is one table update however large its subtree.
///
/// The one place that owns inode numbers and lookup counts: every file system of a volume
/// answers LOOKUP by pinning a node here and FORGET by dropping lookups, whatever backend
/// holds the files. `Content` is what the file system keeps per node.
///
/// Not thread-safe; the file system keeps it under its lock.
struct InodeTable<Content: NodeContent> {
    typealias Node = InodeNode<Content>

    private struct EntryKey: Hashable {
        var parent: UInt64
        var name: FileName
    }

    let root: Node
    private var nodes: [UInt64: Node]
    private var entries: [EntryKey: Node] = [:]
    /// Pending (never published) files by directory inode.
    private var pending: [UInt64: Set<FileName>] = [:]
    private var nextInode: UInt64 = InodeNumber.root.rawValue + 1
    /// The shared-file mirror of this table, for mounts that survive their process (see
    /// ``InodeSlots``); inode numbers are then slot numbers, reused once the kernel forgot them.
    private(set) var slots: InodeSlots?

    init(root: Node) {
        self.root = root
        self.nodes = [root.inode.rawValue: root]
    }

    /// Nodes in the table, root included.
    var count: Int { nodes.count }

    /// Every node (for shutdown).
    var allNodes: [Node] { Array(nodes.values) }

    func node(_ inode: InodeNumber) -> Node? {
        nodes[inode.rawValue]
    }

    func child(of parent: Node, named name: FileName) -> Node? {
        entries[EntryKey(parent: parent.inode.rawValue, name: name)]
    }

    /// The relative path of an attached node ("" for the root), or `nil` if it or one of its
    /// ancestors is detached.
    func path(of node: Node) -> String? {
        if node === root { return "" }
        var components: [String] = []
        var current = node
        while current !== root {
            guard current.isAttached, let parent = current.parent else { return nil }
            components.append(current.name.string)
            current = parent
        }
        if components.count == 1 { return components[0] }
        return components.reversed().joined(separator: "/")
    }

    // MARK: - Lookup counts

    /// Adds one lookup to the child `name` of `parent`, creating the node if needed. An
    /// attached child of another kind is detached first (the name changed kind elsewhere).
    mutating func pinChild(of parent: Node, named name: FileName, kind: NodeKind, pending: Bool = false) -> Node {
        let key = EntryKey(parent: parent.inode.rawValue, name: name)
        if let existing = entries[key] {
            if existing.kind == kind {
                existing.lookups += 1
                slots?.setLookups(existing.inode.rawValue, existing.lookups)
                return existing
            }
            detach(existing)
        }
        let number: UInt64
        if let slot = slots?.allocate() {
            number = slot
        } else {
            number = nextInode
            nextInode += 1
        }
        let node = Node(inode: InodeNumber(rawValue: number), kind: kind, parent: parent, name: name)
        node.lookups = 1
        node.isPending = pending
        nodes[node.inode.rawValue] = node
        entries[key] = node
        parent.children += 1
        if pending { self.pending[parent.inode.rawValue, default: []].insert(name) }
        persistPlace(node)
        slots?.setLookups(number, 1)
        return node
    }

    /// Adds one lookup to a node already in the table.
    mutating func pin(_ node: Node) {
        node.lookups += 1
        slots?.setLookups(node.inode.rawValue, node.lookups)
    }

    /// Drops `count` lookups (FORGET, or a reply that was not delivered).
    mutating func forget(_ node: Node, _ count: UInt64) {
        node.lookups -= min(count, node.lookups)
        slots?.setLookups(node.inode.rawValue, node.lookups)
        removeIfUnused(node)
    }

    mutating func opened(_ node: Node) {
        node.opens += 1
    }

    mutating func closed(_ node: Node) {
        node.opens -= 1
        removeIfUnused(node)
    }

    // MARK: - Tree changes

    /// Removes `node` from its directory (unlink, rmdir, replaced, or gone from the store).
    /// It stays reachable by number while referenced.
    mutating func detach(_ node: Node) {
        guard node.isAttached, let parent = node.parent else { return }
        let key = EntryKey(parent: parent.inode.rawValue, name: node.name)
        if entries[key] === node { entries[key] = nil }
        if node.isPending { removePending(node.name, in: parent) }
        node.isAttached = false
        node.isPending = false
        node.parent = nil
        parent.children -= 1
        persistPlace(node)
        removeIfUnused(parent)
        removeIfUnused(node)
    }

    /// Moves `node` to `parent/name`, detaching whatever node had that name.
    mutating func move(_ node: Node, to parent: Node, name: FileName) {
        let newKey = EntryKey(parent: parent.inode.rawValue, name: name)
        if let target = entries[newKey], target !== node { detach(target) }
        guard node.isAttached, let oldParent = node.parent else { return }
        let oldKey = EntryKey(parent: oldParent.inode.rawValue, name: node.name)
        if entries[oldKey] === node { entries[oldKey] = nil }
        if node.isPending {
            removePending(node.name, in: oldParent)
            pending[parent.inode.rawValue, default: []].insert(name)
        }
        parent.children += 1
        oldParent.children -= 1
        node.parent = parent
        node.name = name
        entries[newKey] = node
        persistPlace(node)
        removeIfUnused(oldParent)
    }

    /// Marks a pending file published (or, with `true`, pending again).
    mutating func setPending(_ node: Node, _ value: Bool) {
        guard node.isPending != value, node.isAttached, let parent = node.parent else { return }
        node.isPending = value
        if value {
            pending[parent.inode.rawValue, default: []].insert(node.name)
        } else {
            removePending(node.name, in: parent)
        }
        persistPlace(node)
    }

    /// Names of pending files in a directory.
    func pendingNames(in directory: Node) -> Set<FileName> {
        pending[directory.inode.rawValue] ?? []
    }

    private mutating func removePending(_ name: FileName, in parent: Node) {
        let key = parent.inode.rawValue
        pending[key]?.remove(name)
        if pending[key]?.isEmpty == true { pending[key] = nil }
    }

    /// Drops nodes nobody references, walking up while parents become unreferenced too.
    private mutating func removeIfUnused(_ node: Node) {
        var candidate: Node? = node
        while let current = candidate, current !== root, current.lookups == 0, current.opens == 0,
            current.children == 0, nodes[current.inode.rawValue] === current
        {
            nodes[current.inode.rawValue] = nil
            slots?.release(current.inode.rawValue)
            candidate = nil
            if current.isAttached, let parent = current.parent {
                let key = EntryKey(parent: parent.inode.rawValue, name: current.name)
                if entries[key] === current { entries[key] = nil }
                if current.isPending { removePending(current.name, in: parent) }
                current.isAttached = false
                current.parent = nil
                parent.children -= 1
                candidate = parent
            }
        }
    }

    // MARK: - Surviving the process

    private func persistPlace(_ node: Node) {
        guard let slots else { return }
        slots.setPlace(
            node.inode.rawValue,
            InodeSlots.Place(
                attached: node.isAttached, kind: node.kind, pending: node.isPending,
                parent: node.parent?.inode.rawValue ?? 0, name: node.name))
    }

    /// Mirrors this (fresh) table in `slots` (emptied) from now on.
    mutating func mirror(in slots: InodeSlots) {
        self.slots = slots
        nextInode = InodeSlots.firstInode + UInt64(slots.capacity)
    }

    /// Rebuilds the table a previous process left in `slots` and mirrors it from now on: the
    /// same numbers for the same nodes, with their lookup counts. Nodes whose place was torn
    /// by a crash, or whose parent is gone, come back detached (requests on them get `ESTALE`
    /// or `ENOENT`).
    ///
    /// - Returns: the restored nodes with the writer records found beside them.
    mutating func restore(from slots: InodeSlots) -> [(Node, InodeSlots.Writer)] {
        let records = slots.usedRecords()
        var restored: [UInt64: (Node, InodeSlots.Record)] = [:]
        for record in records {
            let place = record.place
            let node = Node(
                inode: InodeNumber(rawValue: record.inode), kind: place?.kind ?? .file, parent: nil,
                name: place?.name ?? FileName(""))
            node.lookups = record.lookups
            node.isAttached = false
            restored[record.inode] = (node, record)
            nodes[record.inode] = node
        }
        // Attach children to parents, parents first so that paths resolve.
        func attach(_ inode: UInt64, depth: Int) {
            guard depth < 4096, let (node, record) = restored[inode], let place = record.place, place.attached,
                !node.isAttached
            else { return }
            let parent: Node
            if place.parent == InodeNumber.root.rawValue {
                parent = root
            } else if let (candidate, _) = restored[place.parent] {
                attach(place.parent, depth: depth + 1)
                guard candidate.isAttached, candidate.kind == .directory else { return }
                parent = candidate
            } else {
                return
            }
            let key = EntryKey(parent: parent.inode.rawValue, name: place.name)
            guard entries[key] == nil else { return }
            node.parent = parent
            node.isAttached = true
            node.isPending = place.pending
            entries[key] = node
            parent.children += 1
            if place.pending { pending[parent.inode.rawValue, default: []].insert(place.name) }
        }
        for inode in restored.keys.sorted() { attach(inode, depth: 0) }
        self.slots = slots
        nextInode = InodeSlots.firstInode + UInt64(slots.capacity)
        slots.adoptUsedSlots(Set(restored.keys))
        var writers: [(Node, InodeSlots.Writer)] = []
        for (node, record) in restored.values {
            persistPlace(node)
            if let writer = record.writer, node.kind == .file { writers.append((node, writer)) }
        }
        // Nodes nobody references any more (a lookup count lost in a crash) are dropped.
        for (node, record) in restored.values where record.writer == nil && node.lookups == 0 {
            removeIfUnused(node)
        }
        return writers
    }
}
