// SPDX-License-Identifier: GPL-2.0-or-later
pragma solidity =0.7.6;

// The pool deployer PancakeSwap V3's factory calls, for a test chain.
//
// `@pancakeswap/v3-core@1.0.2` ships the factory and the pool but not `PancakeV3PoolDeployer`.
// This contract has its interface (`parameters()`, `deploy(...)`) and creates each pool with
// CREATE2 from the npm pool's creation code unchanged (read from `poolCode`, a contract whose
// runtime code is that creation code), salted as mainnet's deployer salts it, so pools land at
// the address the periphery computes from its `POOL_INIT_CODE_HASH`.
contract TestPoolDeployer {
    struct Parameters {
        address factory;
        address token0;
        address token1;
        uint24 fee;
        int24 tickSpacing;
    }

    Parameters public parameters;
    address public immutable poolCode;
    address public factoryAddress;

    constructor(address _poolCode) {
        poolCode = _poolCode;
    }

    function setFactoryAddress(address _factoryAddress) external {
        require(factoryAddress == address(0), "already initialized");
        factoryAddress = _factoryAddress;
    }

    function deploy(
        address factory,
        address token0,
        address token1,
        uint24 fee,
        int24 tickSpacing
    ) external returns (address pool) {
        require(msg.sender == factoryAddress, "only factory");
        parameters = Parameters(factory, token0, token1, fee, tickSpacing);
        address code = poolCode;
        bytes32 salt = keccak256(abi.encode(token0, token1, fee));
        assembly {
            let size := extcodesize(code)
            let ptr := mload(0x40)
            extcodecopy(code, ptr, 0, size)
            pool := create2(0, ptr, size, salt)
        }
        require(pool != address(0), "pool creation failed");
        delete parameters;
    }
}
