// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title LedgerAnchor: an ailedger chain's block roots, posted every N blocks by one authorised address.
/// @notice Why on an EVM chain: once a ledger block's hash and roots are here, nobody (the ledger's own
/// operators included) can rewrite that block or any block before it without the change showing, and a
/// third party holding only this chain can check a receipt or an account against an anchored root.
/// The contract judges nothing about the ledger itself; it only keeps what the anchorer posted, in order.
contract LedgerAnchor {
    struct Anchor {
        bytes32 blockHash;    // the ledger block's hash: links earlier headers to this anchor
        bytes32 stateRoot;    // Merkle root of the ledger state after the block
        bytes32 receiptsRoot; // Merkle root of the block's transaction receipts
        uint64 evmBlock;      // the EVM block that recorded it, where its Anchored event lies
    }

    /// The only address allowed to post (set once, at deployment).
    address public anchorer;
    /// The ledger chain id these anchors belong to (a ledger header names it too).
    string public ledgerChainId;
    /// The highest ledger height anchored so far (0 before the first anchor).
    uint64 public lastHeight;
    /// Every anchored height, in posting (and so in increasing) order.
    uint64[] public heights;
    mapping(uint64 => Anchor) private anchors;

    event Anchored(uint64 indexed height, bytes32 blockHash, bytes32 stateRoot, bytes32 receiptsRoot);

    error NotAnchorer(address sender);
    error HeightNotIncreasing(uint64 height, uint64 lastHeight);
    error NoAnchor(uint64 height);

    constructor(address anchorer_, string memory ledgerChainId_) {
        anchorer = anchorer_;
        ledgerChainId = ledgerChainId_;
    }

    /// Record ledger block `height`; heights must strictly increase, so history is append-only.
    function anchor(uint64 height, bytes32 blockHash, bytes32 stateRoot, bytes32 receiptsRoot) external {
        if (msg.sender != anchorer) revert NotAnchorer(msg.sender);
        if (height <= lastHeight) revert HeightNotIncreasing(height, lastHeight);
        anchors[height] = Anchor(blockHash, stateRoot, receiptsRoot, uint64(block.number));
        heights.push(height);
        lastHeight = height;
        emit Anchored(height, blockHash, stateRoot, receiptsRoot);
    }

    /// The anchor of ledger block `height`; reverts with NoAnchor if that height was never anchored.
    function anchorAt(uint64 height) external view returns (Anchor memory) {
        Anchor memory a = anchors[height];
        if (a.evmBlock == 0) revert NoAnchor(height);
        return a;
    }

    /// How many anchors have been posted (the length of `heights`).
    function anchorCount() external view returns (uint256) {
        return heights.length;
    }
}
