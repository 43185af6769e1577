// vineyard-csi: CSIDriver
// CSIModel+Export.swift: the value types of CSIDriver's API come with it.

// Configurations, volume records and the router's options speak ClusterReference, ByteCount and
// BackendSelection; the small module that defines them is shared with vctl, which must not link
// the driver.
@_exported import CSIModel
