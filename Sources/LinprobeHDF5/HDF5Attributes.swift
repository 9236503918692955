internal import CLinprobeHDF5
import Foundation

/// The most elements an attribute may announce (Linprobe's attributes hold a few values or one
/// string; a dataspace claiming more is refused before a buffer is allocated for it).
let maxAttributeElements: hssize_t = 1 << 20

/// Attribute access for the root group and datasets. Writes replace an existing attribute of
/// the same name; reads accept what other writers (h5py) produce: variable- or fixed-length
/// strings, integers of any width, scalars or one-dimensional arrays.
extension HDF5AttributeHolder {
    public func hasAttribute(_ name: String) throws(HDF5Error) -> Bool {
        try checkTri(H5Aexists(hid_t(rawID), name), "H5Aexists", "\(objectName)@\(name)")
    }

    private func replaceAttribute(_ name: String, type: hid_t, space: hid_t) throws(HDF5Error) -> hid_t {
        let object = "\(objectName)@\(name)"
        if try hasAttribute(name) {
            try checkStatus(H5Adelete(hid_t(rawID), name), "H5Adelete", object)
        }
        return try checkID(
            H5Acreate2(hid_t(rawID), name, type, space, lp_H5P_DEFAULT(), lp_H5P_DEFAULT()), "H5Acreate2", object)
    }

    /// Writes a variable-length UTF-8 string attribute.
    public func setAttribute(_ name: String, string value: String) throws(HDF5Error) {
        let object = "\(objectName)@\(name)"
        let type = try makeFileType(.utf8String, object: object)
        defer { H5Tclose(type) }
        let space = try checkID(H5Screate(H5S_SCALAR), "H5Screate", object)
        defer { H5Sclose(space) }
        let attr = try replaceAttribute(name, type: type, space: space)
        defer { H5Aclose(attr) }
        let cString = strdup(value)
        defer { free(cString) }
        var pointer: UnsafeMutablePointer<CChar>? = cString
        try checkStatus(H5Awrite(attr, type, &pointer), "H5Awrite", object)
    }

    /// Writes a scalar int64 attribute.
    public func setAttribute(_ name: String, int64 value: Int64) throws(HDF5Error) {
        let object = "\(objectName)@\(name)"
        let space = try checkID(H5Screate(H5S_SCALAR), "H5Screate", object)
        defer { H5Sclose(space) }
        let attr = try replaceAttribute(name, type: lp_H5T_STD_I64LE(), space: space)
        defer { H5Aclose(attr) }
        var v = value
        try checkStatus(H5Awrite(attr, lp_H5T_NATIVE_INT64(), &v), "H5Awrite", object)
    }

    /// Writes a one-dimensional int64 array attribute.
    public func setAttribute(_ name: String, int64Array values: [Int64]) throws(HDF5Error) {
        let object = "\(objectName)@\(name)"
        var dims = [hsize_t(values.count)]
        let space = try checkID(H5Screate_simple(1, &dims, nil), "H5Screate_simple", object)
        defer { H5Sclose(space) }
        let attr = try replaceAttribute(name, type: lp_H5T_STD_I64LE(), space: space)
        defer { H5Aclose(attr) }
        let status = values.withUnsafeBufferPointer { H5Awrite(attr, lp_H5T_NATIVE_INT64(), $0.baseAddress) }
        try checkStatus(status, "H5Awrite", object)
    }

    private func withAttribute<T>(
        _ name: String, _ body: (hid_t, String) throws(HDF5Error) -> T
    ) throws(HDF5Error) -> T? {
        guard try hasAttribute(name) else { return nil }
        let object = "\(objectName)@\(name)"
        let attr = try checkID(H5Aopen(hid_t(rawID), name, lp_H5P_DEFAULT()), "H5Aopen", object)
        defer { H5Aclose(attr) }
        return try body(attr, object)
    }

    private func elementCount(_ attr: hid_t, _ object: String) throws(HDF5Error) -> Int {
        let space = try checkID(H5Aget_space(attr), "H5Aget_space", object)
        defer { H5Sclose(space) }
        let n = H5Sget_simple_extent_npoints(space)
        if n < 0 {
            throw HDF5Error(
                function: "H5Sget_simple_extent_npoints", message: currentHDF5ErrorMessage(), object: object)
        }
        // Attributes are small metadata; a dataspace announcing more elements is forged.
        guard n <= maxAttributeElements else {
            throw HDF5Error(
                function: "H5Sget_simple_extent_npoints",
                message: "attribute announces \(n) elements (at most \(maxAttributeElements) are read)",
                object: object)
        }
        return Int(n)
    }

    /// Reads a string attribute (a scalar, or the first element of a string array), or nil if
    /// the attribute does not exist. Throws if it exists with another type.
    public func attributeString(_ name: String) throws(HDF5Error) -> String? {
        try withAttribute(name) { (attr, object) throws(HDF5Error) -> String in
            let fileType = try checkID(H5Aget_type(attr), "H5Aget_type", object)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_STRING else {
                throw HDF5Error(
                    function: "H5Aread", message: "expected a string, found \(typeInfo(fileType))", object: object)
            }
            let count = try elementCount(attr, object)
            let space = try checkID(H5Aget_space(attr), "H5Aget_space", object)
            defer { H5Sclose(space) }
            let values = try readStringValues(count: max(count, 1), fileType: fileType, object: object) {
                (memType, buffer) in
                H5Aread(attr, memType, buffer)
            } reclaim: { (memType, buffer) in
                H5Dvlen_reclaim(memType, space, lp_H5P_DEFAULT(), buffer)
            }
            return values.first ?? ""
        }
    }

    /// Reads an integer attribute as int64 (scalar or one-element array), or nil if absent.
    public func attributeInt64(_ name: String) throws(HDF5Error) -> Int64? {
        guard let values = try attributeInt64Array(name) else { return nil }
        guard values.count == 1 else {
            throw HDF5Error(
                function: "H5Aread", message: "expected one integer, found \(values.count)",
                object: "\(objectName)@\(name)")
        }
        return values[0]
    }

    /// Reads an integer array attribute as int64 (any stored width), or nil if absent.
    public func attributeInt64Array(_ name: String) throws(HDF5Error) -> [Int64]? {
        try withAttribute(name) { (attr, object) throws(HDF5Error) -> [Int64] in
            let fileType = try checkID(H5Aget_type(attr), "H5Aget_type", object)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_INTEGER else {
                throw HDF5Error(
                    function: "H5Aread", message: "expected integers, found \(typeInfo(fileType))", object: object)
            }
            var values = [Int64](repeating: 0, count: try elementCount(attr, object))
            let status = values.withUnsafeMutableBufferPointer { H5Aread(attr, lp_H5T_NATIVE_INT64(), $0.baseAddress) }
            try checkStatus(status, "H5Aread", object)
            return values
        }
    }

    /// Names of all attributes.
    public func attributeNames() throws(HDF5Error) -> [String] {
        var info = H5O_info_t()
        try checkStatus(H5Oget_info2(hid_t(rawID), &info, UInt32(H5O_INFO_NUM_ATTRS)), "H5Oget_info2", objectName)
        var names: [String] = []
        for i in 0..<info.num_attrs {
            let attr = try checkID(
                H5Aopen_by_idx(hid_t(rawID), ".", H5_INDEX_NAME, H5_ITER_INC, i, lp_H5P_DEFAULT(), lp_H5P_DEFAULT()),
                "H5Aopen_by_idx", objectName)
            defer { H5Aclose(attr) }
            let length = H5Aget_name(attr, 0, nil)
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Aget_name(attr, buffer.count, &buffer)
            names.append(String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }
}
