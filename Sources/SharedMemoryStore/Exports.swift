// vineyard-csi: SharedMemoryStore
// Exports.swift: vineyard's object model, which every store API speaks.

@_exported public import VineyardObjects
