import Foundation
import LinprobeCore

/// A restricted pickle reader for PyTorch state dicts. It implements the pickle virtual machine
/// for the data opcodes (protocols 0–5) but never imports or calls anything: `GLOBAL` names are
/// checked against a fixed allow-list and the few callables a state dict needs
/// (`OrderedDict`, the tensor rebuild functions, `_codecs.encode`) are interpreted here.
/// Anything else — another global, `INST`/`OBJ`/`EXT*`, out-of-band buffers — is an error that
/// names the opcode or global and its byte offset.
struct Unpickler {
    /// Resolves a persistent id (the tuple after `BINPERSID`) to a value, usually a storage.
    typealias PersistentLoader = (_ pid: PickleValue, _ offset: Int) throws -> PickleValue

    let data: UnsafeRawBufferPointer
    /// Where this pickle starts in the file (offsets in messages are file offsets).
    let fileOffset: Int
    /// File name for messages.
    let source: String
    let persistentLoad: PersistentLoader?

    private(set) var position = 0

    init(data: UnsafeRawBufferPointer, fileOffset: Int = 0, source: String, persistentLoad: PersistentLoader?) {
        self.data = data
        self.fileOffset = fileOffset
        self.source = source
        self.persistentLoad = persistentLoad
    }

    /// Number of bytes consumed by the last `load()`.
    var consumed: Int { position }

    // MARK: - Allow-lists

    /// Callables interpreted by the reader (never executed).
    static let callables: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "_codecs.encode", "torch.Size", "builtins.set", "builtins.frozenset",
    ]
    /// Type tokens that may appear as arguments (storage classes, dtypes, tensor classes).
    static let tokens: Set<String> = [
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
        "torch.BoolStorage", "torch.UntypedStorage", "torch.storage.UntypedStorage",
        "torch.float32", "torch.float", "torch.float16", "torch.half", "torch.bfloat16", "torch.float64",
        "torch.double", "torch.int64", "torch.long", "torch.int32", "torch.int", "torch.int16", "torch.short",
        "torch.int8", "torch.uint8", "torch.bool",
        "torch.Tensor", "torch.nn.parameter.Parameter",
    ]
    /// Classes whose instances are kept as opaque placeholders: they occur in the non-weight
    /// parts of full training checkpoints (meters, arguments) and are never constructed.
    static let inert: Set<String> = [
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
        "argparse.Namespace", "torch.device",
    ]

    // MARK: - Errors

    private func fail(_ message: String, at offset: Int? = nil) -> LinprobeError {
        LinprobeError(.corruptInput, "\(source): \(message) at byte \(fileOffset + (offset ?? position))")
    }

    private func forbidden(_ message: String, at offset: Int) -> LinprobeError {
        LinprobeError(
            .unsupported,
            "\(source): \(message) at byte \(fileOffset + offset); Linprobe reads only tensors, dicts, lists and numbers from a checkpoint and never runs code from it"
        )
    }

    // MARK: - Reading primitives

    private mutating func byte() throws -> UInt8 {
        guard position < data.count else { throw fail("unexpected end of pickle data (file truncated?)") }
        defer { position += 1 }
        return data[position]
    }

    private mutating func bytes(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - position else {
            throw fail("pickle item of \(n) bytes runs past the end of the data (file truncated?)")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
    }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        let b = try bytes(n)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = (v << 8) | UInt64(b[i]) }
        return v
    }

    private mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(data.count) else { throw fail("length \(v) exceeds the pickle's size (file corrupt?)") }
        return Int(v)
    }

    private mutating func line() throws -> String {
        guard let nl = data[position...].firstIndex(of: 0x0A) else { throw fail("unterminated text line in pickle") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: data[position..<nl]), as: UTF8.self)
        position = nl + 1
        return s
    }

    private func text(_ b: UnsafeRawBufferPointer) -> String {
        if let s = String(validating: b, as: UTF8.self) { return s }
        return String(b.map { Character(Unicode.Scalar($0)) })  // latin-1 (Python 2 str)
    }

    // MARK: - Nesting

    /// Containers may nest this deep (a state dict needs fewer than 10 levels). Deeper pickles
    /// are refused while they are read, so no recursion — not even releasing the values — ever
    /// runs over a deeper tree.
    static let maxDepth = 1000

    /// A value on the machine's stack or in its memo, with an upper bound of its nesting depth
    /// (0 for a scalar; lists and dicts keep theirs in the object, as they change in place).
    struct Slot {
        var value: PickleValue
        var depth: Int

        init(_ value: PickleValue, depth: Int = 0) {
            self.value = value
            self.depth = depth
        }

        var nesting: Nesting? {
            switch value {
            case .list(let l): return l.nesting
            case .dict(let d): return d.nesting
            default: return nil
            }
        }

        var liveDepth: Int { nesting?.depth ?? depth }

        func isSameContainer(as other: Slot) -> Bool {
            switch (value, other.value) {
            case (.list(let a), .list(let b)): return a === b
            case (.dict(let a), .dict(let b)): return a === b
            default: return false
            }
        }

        func update(_ body: (inout Nesting) -> Void) {
            switch value {
            case .list(let l): body(&l.nesting)
            case .dict(let d): body(&d.nesting)
            default: break
            }
        }
    }

    /// The depth of a container holding `items`; seals the items (their depth may no longer grow).
    private func depth(holding items: [Slot], at offset: Int) throws -> Int {
        let depth = 1 + (items.map(\.liveDepth).max() ?? 0)
        guard depth <= Unpickler.maxDepth else {
            throw fail(
                "containers are nested more than \(Unpickler.maxDepth) levels deep (not a state dict)",
                at: offset)
        }
        for item in items { item.update { $0.sealed = true } }
        return depth
    }

    /// Accounts for `items` being added to the list or dict `container` (APPEND, SETITEM, ...).
    private func insert(_ items: [Slot], into container: Slot, at offset: Int) throws {
        if items.contains(where: { $0.isSameContainer(as: container) }) {
            throw fail(
                "a \(container.value.typeName) contains itself (self-referencing pickles are not supported)",
                at: offset)
        }
        let depth = try depth(holding: items, at: offset)
        guard let nesting = container.nesting, depth > nesting.depth else { return }
        guard !nesting.sealed else {
            throw fail(
                "a \(container.value.typeName) grows deeper after being placed in another container "
                    + "(self-referencing pickles are not supported)", at: offset)
        }
        container.update { $0.depth = depth }
    }

    // MARK: - The machine

    /// The machine's stack, MARK positions and memo (empty between loads).
    private var stack: [Slot] = []
    private var marks: [Int] = []
    private var memo: [Int: Slot] = [:]

    /// Runs the machine to `STOP` and returns the top value.
    mutating func load() throws -> PickleValue {
        defer {
            stack = []
            marks = []
            memo = [:]
        }
        while true {
            let at = position
            let op = try byte()
            if op == 0x2E { return try pop().value }  // STOP
            if try containerOp(op, at: at) { continue }
            if try scalarOp(op, at: at) { continue }
            if try objectOp(op, at: at) { continue }
            try controlOp(op, at: at)
        }
    }

    private mutating func pop() throws -> Slot {
        guard let v = stack.popLast() else { throw fail("pickle stack underflow (corrupt data)") }
        return v
    }

    private mutating func popMark() throws -> [Slot] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("pickle MARK missing (corrupt data)") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private func top() throws -> Slot {
        guard let v = stack.last else { throw fail("pickle stack underflow (corrupt data)") }
        return v
    }

    private mutating func push(_ value: PickleValue) { stack.append(Slot(value)) }

    private mutating func pushTuple(_ items: [Slot], at offset: Int) throws {
        stack.append(Slot(.tuple(items.map(\.value)), depth: try depth(holding: items, at: offset)))
    }

    private mutating func pushList(_ items: [Slot], at offset: Int) throws {
        let list = PickleList(items.map(\.value))
        list.nesting.depth = try depth(holding: items, at: offset)
        push(.list(list))
    }

    private mutating func pushDict(_ items: [Slot], at offset: Int) throws {
        guard items.count % 2 == 0 else { throw fail("odd number of items for DICT", at: offset) }
        let d = PickleDict()
        d.nesting.depth = try depth(holding: items, at: offset)
        for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i].value, items[i + 1].value) }
        push(.dict(d))
    }

    private func append(_ items: [Slot], opcode: String, at offset: Int) throws {
        let target = try top()
        guard case .list(let l) = target.value else {
            throw fail("\(opcode) to a \(target.value.typeName)", at: offset)
        }
        try insert(items, into: target, at: offset)
        l.items.append(contentsOf: items.map(\.value))
    }

    private func setItems(_ items: [Slot], opcode: String, at offset: Int) throws {
        guard items.count % 2 == 0 else { throw fail("odd number of items for \(opcode)", at: offset) }
        let target = try top()
        guard case .dict(let d) = target.value else {
            throw fail("\(opcode) on a \(target.value.typeName)", at: offset)
        }
        try insert(items, into: target, at: offset)
        for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i].value, items[i + 1].value) }
    }

    /// Containers: building tuples, lists, dicts and sets, and filling them. False: not one of these.
    private mutating func containerOp(_ op: UInt8, at: Int) throws -> Bool {
        // Operands are popped into locals first: the target of APPEND/SETITEM is the top after that.
        switch op {
        case 0x28: marks.append(stack.count)  // MARK
        case 0x29: stack.append(Slot(.tuple([]), depth: 1))  // EMPTY_TUPLE
        case 0x5D: push(.list(PickleList()))  // EMPTY_LIST
        case 0x7D: push(.dict(PickleDict()))  // EMPTY_DICT
        case 0x8F: push(.list(PickleList()))  // EMPTY_SET (kept as a list)
        case 0x74, 0x91:  // TUPLE, FROZENSET
            let items = try popMark()
            try pushTuple(items, at: at)
        case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
            var items: [Slot] = []
            for _ in 0..<Int(op - 0x84) { items.insert(try pop(), at: 0) }
            try pushTuple(items, at: at)
        case 0x6C:  // LIST
            let items = try popMark()
            try pushList(items, at: at)
        case 0x64:  // DICT
            let items = try popMark()
            try pushDict(items, at: at)
        case 0x61:  // APPEND
            let v = try pop()
            try append([v], opcode: "APPEND", at: at)
        case 0x65, 0x90:  // APPENDS, ADDITEMS
            let items = try popMark()
            try append(items, opcode: "APPENDS", at: at)
        case 0x73:  // SETITEM
            let v = try pop(), k = try pop()
            try setItems([k, v], opcode: "SETITEM", at: at)
        case 0x75:  // SETITEMS
            let items = try popMark()
            try setItems(items, opcode: "SETITEMS", at: at)
        default: return false
        }
        return true
    }

    /// Numbers, strings and bytes. False: not one of these.
    private mutating func scalarOp(_ op: UInt8, at: Int) throws -> Bool {
        switch op {
        case 0x4E: push(.none)  // NONE
        case 0x88: push(.bool(true))  // NEWTRUE
        case 0x89: push(.bool(false))  // NEWFALSE
        case 0x4A: push(.int(Int(Int32(bitPattern: UInt32(try uint(4))))))  // BININT
        case 0x4B: push(.int(Int(try byte())))  // BININT1
        case 0x4D: push(.int(Int(try uint(2))))  // BININT2
        case 0x49:  // INT (text; "00"/"01" are booleans in protocol 0)
            let s = try line()
            if s == "00" {
                push(.bool(false))
            } else if s == "01" {
                push(.bool(true))
            } else {
                guard let i = Int(s) else { throw fail("bad INT literal '\(s)'", at: at) }
                push(.int(i))
            }
        case 0x4C:  // LONG (text)
            var s = try line()
            if s.hasSuffix("L") { s.removeLast() }
            guard let i = Int(s) else { throw fail("LONG literal '\(s)' is too large", at: at) }
            push(.int(i))
        case 0x8A, 0x8B:  // LONG1, LONG4
            let n = try length(op == 0x8A ? 1 : 4)
            push(Unpickler.integer(littleEndian: Array(try bytes(n))))
        case 0x47:  // BINFLOAT (big-endian)
            push(.float(Double(bitPattern: (try bytes(8)).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) })))
        case 0x46:  // FLOAT (text)
            let s = try line()
            guard let d = Double(s) else { throw fail("bad FLOAT literal '\(s)'", at: at) }
            push(.float(d))
        case 0x58, 0x54: push(.string(text(try bytes(try length(4)))))  // BINUNICODE, BINSTRING (Python 2 str)
        case 0x8C, 0x55: push(.string(text(try bytes(try length(1)))))  // SHORT_BINUNICODE, SHORT_BINSTRING
        case 0x8D: push(.string(text(try bytes(try length(8)))))  // BINUNICODE8
        case 0x56: push(.string(Unpickler.rawUnicodeEscape(try line())))  // UNICODE
        case 0x53:  // STRING (text, quoted)
            var s = try line()
            if s.count >= 2, let f = s.first, f == s.last, f == "'" || f == "\"" {
                s = String(s.dropFirst().dropLast())
            }
            push(.string(s))
        case 0x42: push(.bytes(Array(try bytes(try length(4)))))  // BINBYTES
        case 0x43: push(.bytes(Array(try bytes(try length(1)))))  // SHORT_BINBYTES
        case 0x8E, 0x96: push(.bytes(Array(try bytes(try length(8)))))  // BINBYTES8, BYTEARRAY8
        default: return false
        }
        return true
    }

    /// Globals, calls, object construction and persistent ids. False: not one of these.
    private mutating func objectOp(_ op: UInt8, at: Int) throws -> Bool {
        switch op {
        case 0x63:  // GLOBAL
            let module = try line(), name = try line()
            push(try checkedGlobal(module, name, at: at))
        case 0x93:  // STACK_GLOBAL
            let name = try pop().value, module = try pop().value
            guard let m = module.stringValue, let n = name.stringValue else {
                throw fail("STACK_GLOBAL with non-string operands", at: at)
            }
            push(try checkedGlobal(m, n, at: at))
        case 0x52:  // REDUCE
            let args = try pop(), callable = try pop()
            let result = Self.result(try call(callable.value, args.value, at: at), from: args)
            stack.append(result)
        case 0x81, 0x92:  // NEWOBJ, NEWOBJ_EX (its kwargs are dropped)
            if op == 0x92 { _ = try pop() }
            let args = try pop(), cls = try pop()
            push(try construct(cls.value, args.value, at: at))
        case 0x62:  // BUILD
            _ = try pop()  // the state
            let object = try top().value
            switch object {
            case .dict, .opaque, .tensor:
                break  // attributes of an OrderedDict (`_metadata`) or a tensor subclass: not needed
            default:
                throw forbidden("BUILD (setting the state of a \(object.typeName)) is not allowed", at: at)
            }
        case 0x51, 0x50:  // BINPERSID, PERSID (text)
            let pid: PickleValue
            if op == 0x51 { pid = try pop().value } else { pid = .string(try line()) }
            guard let persistentLoad else { throw forbidden("persistent id outside a PyTorch checkpoint", at: at) }
            push(try persistentLoad(pid, fileOffset + at))
        default: return false
        }
        return true
    }

    /// Protocol and framing, the memo, stack manipulation; forbidden and unknown opcodes throw.
    private mutating func controlOp(_ op: UInt8, at: Int) throws {
        switch op {
        case 0x80:  // PROTO
            let proto = try byte()
            guard proto <= 5 else { throw fail("unsupported pickle protocol \(proto)", at: at) }
        case 0x95: _ = try uint(8)  // FRAME
        case 0x71: memo[Int(try byte())] = try top()  // BINPUT
        case 0x72: memo[Int(try uint(4))] = try top()  // LONG_BINPUT
        case 0x70:  // PUT
            let s = try line()
            guard let i = Int(s) else { throw fail("bad PUT index '\(s)'", at: at) }
            memo[i] = try top()
        case 0x94: memo[memo.count] = try top()  // MEMOIZE
        case 0x68, 0x6A, 0x67:  // BINGET, LONG_BINGET, GET
            let index: Int
            if op == 0x68 {
                index = Int(try byte())
            } else if op == 0x6A {
                index = Int(try uint(4))
            } else {
                let s = try line()
                guard let i = Int(s) else { throw fail("bad GET index '\(s)'", at: at) }
                index = i
            }
            guard let v = memo[index] else { throw fail("memo entry \(index) used before it was stored", at: at) }
            stack.append(v)
        case 0x30: _ = try pop()  // POP
        case 0x31: _ = try popMark()  // POP_MARK
        case 0x32:  // DUP
            let t = try top()
            stack.append(t)
        case 0x69: throw forbidden("pickle opcode INST (0x69) is not allowed", at: at)
        case 0x6F: throw forbidden("pickle opcode OBJ (0x6f) is not allowed", at: at)
        case 0x82, 0x83, 0x84: throw forbidden("pickle opcode EXT (0x\(String(op, radix: 16))) is not allowed", at: at)
        case 0x97, 0x98:
            throw forbidden("pickle out-of-band buffer opcode (0x\(String(op, radix: 16))) is not allowed", at: at)
        default:
            throw fail(
                "unknown pickle opcode 0x\(String(op, radix: 16)) (not a PyTorch checkpoint, or corrupt)", at: at)
        }
    }

    /// The slot of a REDUCE result: it is built from parts of `args` (already sealed), so the
    /// arguments' depth bounds it; a fresh list or dict records that bound.
    private static func result(_ value: PickleValue, from args: Slot) -> Slot {
        let slot = Slot(value, depth: args.liveDepth)
        slot.update { if !$0.sealed { $0.depth = max($0.depth, args.liveDepth) } }
        return slot
    }

    // MARK: - Globals and calls

    private func checkedGlobal(_ module: String, _ name: String, at offset: Int) throws -> PickleValue {
        let full = "\(module).\(name)"
        guard Unpickler.callables.contains(full) || Unpickler.tokens.contains(full) || Unpickler.inert.contains(full)
        else {
            let wholeModel =
                module == "__main__" || module.hasPrefix("torch.nn.modules") || module.hasPrefix("torchvision.models")
                || module.hasPrefix("vissl.") || module.hasPrefix("classy_vision.")
            throw forbidden(
                "pickle global '\(full)' is not allowed"
                    + (wholeModel
                        ? " (the file pickles a model object; save model.state_dict() with torch.save instead)" : ""),
                at: offset)
        }
        return .global(module: module, name: name)
    }

    private func construct(_ cls: PickleValue, _ args: PickleValue, at offset: Int) throws -> PickleValue {
        guard case .global(let m, let n) = cls else { throw fail("NEWOBJ on a \(cls.typeName)", at: offset) }
        let full = "\(m).\(n)"
        if Unpickler.inert.contains(full) { return .opaque(full) }
        if full == "collections.OrderedDict" { return .dict(PickleDict()) }
        throw forbidden("constructing '\(full)' is not allowed", at: offset)
    }

    private func call(_ callable: PickleValue, _ argsValue: PickleValue, at offset: Int) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            throw forbidden("calling a \(callable.typeName) is not allowed", at: offset)
        }
        let full = "\(module).\(name)"
        if Unpickler.inert.contains(full) { return .opaque(full) }
        guard Unpickler.callables.contains(full) else {
            throw forbidden("calling '\(full)' is not allowed", at: offset)
        }
        guard case .tuple(let args) = argsValue else {
            throw fail("REDUCE arguments are a \(argsValue.typeName), not a tuple", at: offset)
        }
        switch full {
        case "collections.OrderedDict":
            let d = PickleDict()
            if let first = args.first, let pairs = first.sequence {
                for p in pairs {
                    guard let kv = p.sequence, kv.count == 2 else {
                        throw fail("OrderedDict item is not a pair", at: offset)
                    }
                    d.set(kv[0], kv[1])
                }
            }
            return .dict(d)
        case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
            guard args.count >= 4 else { throw fail("\(name) with \(args.count) arguments", at: offset) }
            return try rebuildTensor(
                storage: args[0], offset: args[1], size: args[2], stride: args[3], dtype: nil, at: offset)
        case "torch._utils._rebuild_tensor_v3":
            guard args.count >= 7 else { throw fail("\(name) with \(args.count) arguments", at: offset) }
            guard case .global("torch", let dt) = args[6], let dtype = TensorDType.fromTorchDType(dt) else {
                throw forbidden("tensor dtype \(args[6].typeName) is not supported", at: offset)
            }
            return try rebuildTensor(
                storage: args[0], offset: args[1], size: args[2], stride: args[3], dtype: dtype, at: offset)
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let first = args.first else { throw fail("\(name) without arguments", at: offset) }
            return first
        case "torch._tensor._rebuild_from_type_v2":
            // (func, new_type, args, state): only the tensor rebuild functions may be the func.
            guard args.count >= 3 else { throw fail("\(name) with \(args.count) arguments", at: offset) }
            return try call(args[0], args[2], at: offset)
        case "_codecs.encode":
            guard let s = args.first?.stringValue else { throw fail("_codecs.encode without a string", at: offset) }
            return .bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
        case "torch.Size":
            return .tuple(args.first?.sequence ?? [])
        case "builtins.set", "builtins.frozenset":
            return .list(PickleList(args.first?.sequence ?? []))
        default:
            throw forbidden("calling '\(full)' is not allowed", at: offset)
        }
    }

    private func rebuildTensor(
        storage: PickleValue, offset: PickleValue, size: PickleValue, stride: PickleValue,
        dtype explicit: TensorDType?, at: Int
    ) throws -> PickleValue {
        guard case .storage(let ref) = storage else {
            throw fail("tensor rebuilt from a \(storage.typeName) instead of a storage", at: at)
        }
        guard let off = offset.intValue, let shapeItems = size.sequence, let strideItems = stride.sequence else {
            throw fail("malformed tensor record (offset, size or stride)", at: at)
        }
        let shape = try shapeItems.map { v -> Int in
            guard let i = v.intValue else { throw fail("non-integer tensor size", at: at) }
            return i
        }
        let strides = try strideItems.map { v -> Int in
            guard let i = v.intValue else { throw fail("non-integer tensor stride", at: at) }
            return i
        }
        return .tensor(
            TensorRecord(storage: ref, dtype: explicit ?? ref.dtype, shape: shape, strides: strides, storageOffset: off)
        )
    }

    // MARK: - Helpers

    static func integer(littleEndian b: [UInt8]) -> PickleValue {
        if b.isEmpty { return .int(0) }
        if b.count <= 8 {
            var v: UInt64 = 0
            for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            if b.count < 8, let last = b.last, (last & 0x80) != 0 { v |= ~UInt64(0) << (8 * UInt64(b.count)) }
            return .int(Int(Int64(bitPattern: v)))
        }
        return .bigInt(b)
    }

    /// Decodes Python's raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`).
    static func rawUnicodeEscape(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        let scalars = Array(s.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "\\", i + 1 < scalars.count, scalars[i + 1] == "u" || scalars[i + 1] == "U" {
                let n = scalars[i + 1] == "u" ? 4 : 8
                if i + 2 + n <= scalars.count,
                    let v = UInt32(String(String.UnicodeScalarView(scalars[(i + 2)..<(i + 2 + n)])), radix: 16),
                    let u = Unicode.Scalar(v)
                {
                    out.append(u)
                    i += 2 + n
                    continue
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }
}
