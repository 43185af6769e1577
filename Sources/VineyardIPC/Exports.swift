// vineyard-csi: VineyardIPC
// Exports.swift: vineyard's object model, which every request, reply and client call speaks.

@_exported public import VineyardObjects
